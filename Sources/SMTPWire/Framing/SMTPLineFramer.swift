// Strict line framing for SMTP: lines end with CRLF and nothing else. A bare LF or a bare
// CR anywhere in a line is reported (the SMTP smuggling family, CVE-2023-51764..6), and a
// line longer than the limit is reported once and then skipped up to its end.

import NIOCore

/// One framing result.
public enum FramedLine: Equatable, Sendable {
    /// A complete line, without its CRLF.
    case line(ByteBuffer)
    /// A line longer than the limit (CRLF included); its bytes were discarded.
    case tooLong
    /// A line containing a LF not preceded by CR, or a CR not followed by LF.
    case bareNewline
}

public struct SMTPLineFramer: Sendable {
    /// True while the rest of an over-long line is being skipped.
    private var discarding = false

    public init() {}

    /// Takes the next line out of `buffer`, or returns nil when more bytes are needed.
    public mutating func next(from buffer: inout ByteBuffer, limit: Int) -> FramedLine? {
        while true {
            let view = buffer.readableBytesView
            guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
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
            let content = buffer.readSlice(length: lineLength - 2)!
            buffer.moveReaderIndex(forwardBy: 2)
            if content.readableBytesView.contains(UInt8(ascii: "\r")) { return .bareNewline }
            return .line(content)
        }
    }
}
