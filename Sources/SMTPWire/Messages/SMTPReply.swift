// SMTP replies: parsing the backend's (single and multi-line), writing the guard's own.

import NIOCore

public struct SMTPReply: Equatable, Sendable, CustomStringConvertible {
    public var code: Int
    /// The text of each line, after the code and its separator.
    public var lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines.isEmpty ? [""] : lines
    }

    public init(code: Int, _ text: String) {
        self.init(code: code, lines: [text])
    }

    /// A configured reply such as "535 5.7.8 Authentication credentials invalid".
    public init?(configured text: String) {
        guard text.utf8.count >= 3, let code = Int(text.prefix(3)), (200...599).contains(code) else { return nil }
        let rest = text.dropFirst(3)
        self.init(code: code, lines: [String(rest.drop(while: { $0 == " " }))])
    }

    public var isPositive: Bool { self.code < 400 }

    /// The wire form, every line ended by CRLF.
    public var encoded: String {
        var out = ""
        for (i, line) in self.lines.enumerated() {
            out += String(self.code)
            out += i == self.lines.count - 1 ? (line.isEmpty ? " " : " ") : "-"
            out += line
            out += "\r\n"
        }
        return out
    }

    public var description: String { self.encoded }

    /// Writes the wire form straight into a buffer (no intermediate string).
    public func write(into buffer: inout ByteBuffer) {
        let digits: (UInt8, UInt8, UInt8) = (
            UInt8(ascii: "0") + UInt8(truncatingIfNeeded: self.code / 100 % 10),
            UInt8(ascii: "0") + UInt8(truncatingIfNeeded: self.code / 10 % 10),
            UInt8(ascii: "0") + UInt8(truncatingIfNeeded: self.code % 10))
        for (i, line) in self.lines.enumerated() {
            buffer.writeMultipleIntegers(digits.0, digits.1, digits.2, i == self.lines.count - 1 ? UInt8(ascii: " ") : UInt8(ascii: "-"))
            buffer.writeString(line)
            buffer.writeStaticString("\r\n")
        }
    }
}

/// Assembles replies from lines; a multi-line reply ends at the line with a space after the code.
public struct SMTPReplyAccumulator: Sendable {
    public enum Failure: Error, Equatable, Sendable {
        case malformed
        case codeChanged
        case tooManyLines
    }

    private var code: Int?
    private var lines: [String] = []
    public let maxLines: Int

    public init(maxLines: Int = 200) { self.maxLines = maxLines }

    /// Some lines of a multi-line reply have come, not its last.
    public var isPartial: Bool { self.code != nil }

    /// Feeds one line (without CRLF); returns the reply when it is complete.
    public mutating func feed(_ line: ByteBuffer) throws(Failure) -> SMTPReply? {
        let bytes = line.readableBytesView
        guard bytes.count >= 3 else { throw .malformed }
        var code = 0
        for byte in bytes.prefix(3) {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { throw .malformed }
            code = code * 10 + Int(byte - UInt8(ascii: "0"))
        }
        guard (200...599).contains(code) else { throw .malformed }
        if let current = self.code, current != code { throw .codeChanged }
        let separator = bytes.count > 3 ? bytes[bytes.startIndex + 3] : UInt8(ascii: " ")
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else { throw .malformed }
        let text = bytes.count > 4 ? String(decoding: bytes.dropFirst(4), as: UTF8.self) : ""
        self.code = code
        self.lines.append(text)
        guard self.lines.count <= self.maxLines else { throw .tooManyLines }
        if separator == UInt8(ascii: "-") { return nil }
        let reply = SMTPReply(code: code, lines: self.lines)
        self.code = nil
        self.lines = []
        return reply
    }

    public var isMidReply: Bool { self.code != nil }
}

/// Whole replies out of a byte stream, for the guard's side of a client connection (the
/// backend connection, the audit's probe): strict line framing, then reply assembly.
public struct SMTPReplyReader: Sendable {
    public enum Failure: Error, Equatable, Sendable {
        case malformed(SMTPReplyAccumulator.Failure)
        /// A line longer than `maxLine`.
        case tooLong
        /// A CR or LF alone.
        case bareNewline
    }

    public let maxLine: Int
    private var buffer = ByteBuffer()
    private var framer = SMTPLineFramer()
    private var accumulator = SMTPReplyAccumulator()

    public init(maxLine: Int) { self.maxLine = maxLine }

    /// Bytes received and not yet made into a reply (a partial line or reply).
    public var hasBufferedInput: Bool { self.buffer.readableBytes > 0 || self.accumulator.isPartial }

    public mutating func append(_ incoming: inout ByteBuffer) {
        if self.buffer.readableBytes == 0 {
            self.buffer = incoming
        } else {
            self.buffer.writeBuffer(&incoming)
        }
    }

    /// The next whole reply, or nil when more bytes are needed.
    public mutating func next() throws(Failure) -> SMTPReply? {
        while let framed = self.framer.next(from: &self.buffer, limit: self.maxLine) {
            switch framed {
            case .line(let line):
                do {
                    if let reply = try self.accumulator.feed(line.content) { return reply }
                } catch {
                    throw .malformed(error)
                }
            case .tooLong: throw .tooLong
            case .bareNewline: throw .bareNewline
            case .tlsRecord: continue  // not asked for
            }
        }
        if self.buffer.readerIndex > 16_384 { self.buffer.discardReadBytes() }
        return nil
    }
}
