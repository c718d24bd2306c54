// Strict line framing for SMTP: lines end with CRLF and nothing else. A bare LF or a bare
// CR anywhere in a line is reported (the SMTP smuggling family, CVE-2023-51764..6), and a
// line longer than the limit is reported once and then skipped up to its end.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// One line as it came off the wire: `wire` with its CRLF (forwarded as it is, without a
/// copy), `content` without.
public struct SMTPLine: Equatable, Sendable {
    public var wire: ByteBuffer

    public init(wire: ByteBuffer) { self.wire = wire }

    /// A line built from text (tests, initial responses); CRLF is added.
    public init(_ text: String) {
        self.wire = ByteBuffer(string: text + "\r\n")
    }

    /// The line without its CRLF (the framer always leaves one; other callers may not).
    public var content: ByteBuffer {
        self.wire.getSlice(at: self.wire.readerIndex, length: max(0, self.wire.readableBytes - 2))!
    }
}

/// One framing result.
public enum FramedLine: Equatable, Sendable {
    /// A complete line.
    case line(SMTPLine)
    /// A line longer than the limit (CRLF included); its bytes were discarded.
    case tooLong
    /// A line containing a LF not preceded by CR, or a CR not followed by LF.
    case bareNewline
    /// A TLS record (a ClientHello) where a command line should begin; every buffered byte
    /// was discarded. Reported only when asked for.
    case tlsRecord
}

public struct SMTPLineFramer: Sendable {
    /// True while the rest of an over-long line is being skipped.
    private var discarding = false

    public init() {}

    /// Takes the next line out of `buffer`, or returns nil when more bytes are needed.
    /// `detectTLS`: a line that begins like a TLS handshake record (0x16 0x03) is reported at
    /// once, without waiting for an end of line that a TLS client will never send.
    public mutating func next(from buffer: inout ByteBuffer, limit: Int, detectTLS: Bool = false) -> FramedLine? {
        if detectTLS && !self.discarding, let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), first == 0x16 {
            guard let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self) else { return nil }
            if second == 0x03 {
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                return .tlsRecord
            }
        }
        while true {
            let view = buffer.readableBytesView
            guard let lf = Self.firstLineFeed(in: buffer).map({ view.startIndex + $0 }) else {
                // No end of line yet. Past the limit, the line is already too long.
                if buffer.readableBytes >= limit || self.discarding {
                    let wasDiscarding = self.discarding
                    // Keep a trailing CR: it may pair with the LF of the next read.
                    let keep = view.last == UInt8(ascii: "\r") ? 1 : 0
                    buffer.moveReaderIndex(forwardBy: buffer.readableBytes - keep)
                    self.discarding = true
                    if !wasDiscarding { return .tooLong }
                }
                return nil
            }
            let lineLength = lf - view.startIndex + 1
            if self.discarding {
                buffer.moveReaderIndex(forwardBy: lineLength)
                self.discarding = false
                continue
            }
            if lineLength > limit {
                buffer.moveReaderIndex(forwardBy: lineLength)
                return .tooLong
            }
            guard lineLength >= 2, view[lf - 1] == UInt8(ascii: "\r") else {
                buffer.moveReaderIndex(forwardBy: lineLength)
                return .bareNewline
            }
            let wire = buffer.readSlice(length: lineLength)!
            let hasCR = wire.withUnsafeReadableBytes { bytes in
                memchr(bytes.baseAddress!, 0x0D, bytes.count - 2) != nil
            }
            if hasCR { return .bareNewline }
            return .line(SMTPLine(wire: wire))
        }
    }

    /// Offset of the first LF in the readable bytes (memchr: lines are scanned at memory speed).
    @inline(__always)
    static func firstLineFeed(in buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard let base = bytes.baseAddress, bytes.count > 0, let hit = memchr(base, 0x0A, bytes.count) else { return nil }
            return base.distance(to: UnsafeRawPointer(hit))
        }
    }
}

extension ByteBuffer {
    /// True when the readable bytes hold a NUL.
    public var containsNUL: Bool {
        self.withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return false }
            return memchr(base, 0, bytes.count) != nil
        }
    }
}
