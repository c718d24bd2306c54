// The client commands the guard must tell apart. Everything else is passed to the backend
// as the client sent it (after the framing checks).

import NIOCore

public enum SMTPVerb: String, Sendable, Equatable {
    case helo = "HELO", ehlo = "EHLO", auth = "AUTH", mail = "MAIL", rcpt = "RCPT", data = "DATA", bdat = "BDAT"
    case rset = "RSET", quit = "QUIT", noop = "NOOP", startTLS = "STARTTLS", xclient = "XCLIENT"
    case xforward = "XFORWARD", vrfy = "VRFY", expn = "EXPN", help = "HELP", etrn = "ETRN"
    case other
}

public struct SMTPCommand: Equatable, Sendable {
    public var verb: SMTPVerb
    /// The verb as sent (letters only, at most 16).
    public var verbBytes: ByteBuffer
    /// What follows the verb and one space.
    public var argumentBytes: ByteBuffer

    /// The verb as sent, upper-cased.
    public var verbText: String { String(buffer: self.verbBytes).uppercased() }
    /// What follows the verb and one space (empty when nothing does).
    public var argument: String { String(buffer: self.argumentBytes) }

    /// Splits a command line. Returns nil for a line that is not a command at all: empty,
    /// control characters (NUL, DEL and the C0 set other than tab), or a verb that is not
    /// made of letters.
    public init?(line: ByteBuffer) {
        let count = line.readableBytes
        guard count > 0, count <= 1_048_576 else { return nil }
        var verbLength = count
        var packed: UInt64 = 0
        let valid = line.withUnsafeReadableBytes { bytes -> Bool in
            var inVerb = true
            for i in 0..<bytes.count {
                let byte = bytes[i]
                if (byte < 0x20 && byte != 0x09) || byte == 0x7F { return false }
                guard inVerb else { continue }
                if byte == 0x20 {
                    verbLength = i
                    inVerb = false
                    continue
                }
                let isLetter = (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
                guard isLetter, i < 16 else { return false }
                if i < 8 { packed = packed << 8 | UInt64(byte & 0xDF) }  // upper-cased
            }
            return true
        }
        guard valid, verbLength > 0 else { return nil }
        self.verb = verbLength <= 8 ? SMTPVerb.known[packed] ?? .other : .other
        self.verbBytes = line.getSlice(at: line.readerIndex, length: verbLength)!
        let rest = verbLength < count ? count - verbLength - 1 : 0
        self.argumentBytes = line.getSlice(at: line.readerIndex + count - rest, length: rest)!
    }

    /// True when a line (by its first bytes) is an AUTH command, which may be longer.
    public static func looksLikeAuth(_ buffer: ByteBuffer) -> Bool {
        guard buffer.readableBytes >= 5, let word = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
            buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self) == 0x20
        else { return false }
        return word | 0x2020_2020 == 0x6175_7468  // "auth", any case
    }
}

extension SMTPVerb {
    /// Verbs by their upper-case letters packed into an integer.
    static let known: [UInt64: SMTPVerb] = {
        var table: [UInt64: SMTPVerb] = [:]
        for verb in [SMTPVerb.helo, .ehlo, .auth, .mail, .rcpt, .data, .bdat, .rset, .quit, .noop, .startTLS, .xclient, .xforward, .vrfy, .expn, .help, .etrn] {
            let packed = verb.rawValue.utf8.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            table[packed] = verb
        }
        return table
    }()
}
