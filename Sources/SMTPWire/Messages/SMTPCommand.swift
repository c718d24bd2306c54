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
    /// The verb as sent, upper-cased.
    public var verbText: String
    /// What follows the verb and one space (empty when nothing does).
    public var argument: String

    /// Splits a command line. Returns nil for a line that is not a command at all: empty,
    /// control characters (NUL, DEL and the C0 set other than tab), or a verb that is not
    /// made of letters.
    public init?(line: ByteBuffer) {
        let bytes = line.readableBytesView
        guard !bytes.isEmpty, bytes.count <= 1_048_576 else { return nil }
        for byte in bytes where (byte < 0x20 && byte != 0x09) || byte == 0x7F { return nil }
        let spaceIndex = bytes.firstIndex(of: UInt8(ascii: " "))
        let verbBytes = bytes[bytes.startIndex..<(spaceIndex ?? bytes.endIndex)]
        guard !verbBytes.isEmpty, verbBytes.count <= 16,
            verbBytes.allSatisfy({ ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) })
        else { return nil }
        self.verbText = String(decoding: verbBytes, as: UTF8.self).uppercased()
        self.verb = SMTPVerb(rawValue: self.verbText) ?? .other
        if let spaceIndex {
            self.argument = String(decoding: bytes[(spaceIndex + 1)...], as: UTF8.self)
        } else {
            self.argument = ""
        }
    }

    /// True when a line (by its first bytes) is an AUTH command, which may be longer.
    public static func looksLikeAuth(_ buffer: ByteBuffer) -> Bool {
        let bytes = buffer.readableBytesView.prefix(5)
        guard bytes.count == 5 else { return false }
        let word = bytes.map { $0 | 0x20 }
        return word == [0x61, 0x75, 0x74, 0x68, 0x20]  // "auth "
    }
}
