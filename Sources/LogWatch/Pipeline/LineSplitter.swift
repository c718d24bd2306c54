// Bytes in, whole lines out. A line split across two reads is joined; a line longer than the
// limit is cut at the limit (the rest until its newline is skipped and counted), so a 100 kB
// line can neither exhaust memory nor swallow the lines after it. CR before LF is dropped.
// Bytes are never decoded here: invalid UTF-8 reaches the formats as it is.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct LineSplitter: Sendable {
    public let maxLineLength: Int
    private var partial: [UInt8] = []
    private var skipping = false
    /// Lines cut at the limit so far.
    public private(set) var truncatedLines = 0

    public init(maxLineLength: Int = 16 * 1024) {
        self.maxLineLength = maxLineLength
    }

    /// Bytes held back: the start of a line whose newline has not come yet.
    public var pendingCount: Int { self.partial.count }

    /// Feeds bytes; calls `line` for every complete line.
    public mutating func feed(_ bytes: some Collection<UInt8>, line: (ArraySlice<UInt8>) throws -> Void) rethrows {
        var chunk = Array(bytes)[...]
        while !chunk.isEmpty {
            guard let newline = Self.newline(in: chunk) else {
                if !self.skipping {
                    let room = self.maxLineLength - self.partial.count
                    if chunk.count > room {
                        self.partial.append(contentsOf: chunk.prefix(room))
                        self.skipping = true
                        self.truncatedLines += 1
                    } else {
                        self.partial.append(contentsOf: chunk)
                    }
                }
                return
            }
            let piece = chunk[..<newline]
            chunk = chunk[(newline + 1)...]
            if self.skipping {
                self.skipping = false
                try self.emit(self.partial[...], line)
                self.partial.removeAll(keepingCapacity: true)
                continue
            }
            if self.partial.isEmpty {
                if piece.count > self.maxLineLength {
                    self.truncatedLines += 1
                    try self.emit(piece.prefix(self.maxLineLength), line)
                } else {
                    try self.emit(piece, line)
                }
            } else {
                let room = self.maxLineLength - self.partial.count
                if piece.count > room { self.truncatedLines += 1 }
                self.partial.append(contentsOf: piece.prefix(room))
                try self.emit(self.partial[...], line)
                self.partial.removeAll(keepingCapacity: true)
            }
        }
    }

    @inline(__always)
    static func newline(in chunk: ArraySlice<UInt8>) -> Int? {
        chunk.withUnsafeBufferPointer { buffer -> Int? in
            guard let base = buffer.baseAddress, let hit = memchr(base, 0x0A, buffer.count) else { return nil }
            return chunk.startIndex + base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// The held-back bytes as a last line (at the end of a file that will not grow).
    public mutating func flush(line: (ArraySlice<UInt8>) throws -> Void) rethrows {
        guard !self.partial.isEmpty else { return }
        let rest = self.partial
        self.partial.removeAll()
        self.skipping = false
        try self.emit(rest[...], line)
    }

    /// Forgets a held-back partial line (the file was truncated or replaced).
    public mutating func reset() {
        self.partial.removeAll()
        self.skipping = false
    }

    private func emit(_ piece: ArraySlice<UInt8>, _ line: (ArraySlice<UInt8>) throws -> Void) rethrows {
        var piece = piece
        if piece.last == 0x0D { piece = piece.dropLast() }
        try line(piece)
    }
}
