// What can be wrong with an .evtx file: an error that stops reading it (not an .evtx file, a
// version this reader does not know, a file that cannot be read), and the damage that does
// not (a chunk or a record that is skipped, the rest read on).

/// Reading stopped: the file is not an .evtx file, or cannot be read.
public struct EvtxError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file's path (or the name given to bytes in memory).
    public var file: String
    /// What was wrong, and where.
    public var problem: String

    public init(file: String, problem: String) {
        self.file = file
        self.problem = problem
    }

    public var description: String { "\(self.file): \(self.problem)" }
}

/// A part of the file that could not be read, and was skipped.
public struct EvtxDamage: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Part: Sendable, Equatable {
        /// The file header (its checksum): the chunks are read all the same.
        case fileHeader
        /// A whole chunk, skipped (or, when `recordsRead` > 0, the unverified rest of a chunk
        /// cut short by the end of the file).
        case chunk
        /// One record, skipped; the chunk's other records are read.
        case record
    }

    public var file: String
    public var part: Part
    /// The chunk's position in the file (0 is the first), nil for the file header.
    public var chunk: Int?
    /// Where in the file: the chunk's start, or the record's.
    public var offset: UInt64
    /// What was wrong.
    public var problem: String
    /// Records still read from that chunk (a chunk cut short keeps the records it holds whole).
    public var recordsRead: Int

    public init(file: String, part: Part, chunk: Int?, offset: UInt64, problem: String, recordsRead: Int = 0) {
        self.file = file
        self.part = part
        self.chunk = chunk
        self.offset = offset
        self.problem = problem
        self.recordsRead = recordsRead
    }

    /// A whole chunk was skipped: none of its records were read.
    public var skipsChunk: Bool { self.part == .chunk && self.recordsRead == 0 }

    public var description: String {
        let place: String
        switch self.part {
        case .fileHeader: place = "file header"
        case .chunk: place = "chunk \(self.chunk ?? 0) at offset \(Hex.offset(self.offset))"
        case .record: place = "chunk \(self.chunk ?? 0): record at offset \(Hex.offset(self.offset))"
        }
        let outcome: String
        switch self.part {
        case .fileHeader: outcome = "chunks read all the same"
        case .chunk: outcome = self.recordsRead == 0 ? "chunk skipped" : "\(self.recordsRead) records read from it"
        case .record: outcome = "record skipped"
        }
        return "\(self.file): \(place): \(self.problem); \(outcome)"
    }
}

/// A record's binary XML (or a chunk's structure) that does not parse: where in the chunk, and why.
struct BinXMLError: Error, CustomStringConvertible {
    var offset: Int
    var problem: String

    init(_ offset: Int, _ problem: String) {
        self.offset = offset
        self.problem = problem
    }

    var description: String { "\(self.problem) at chunk offset \(Hex.offset(UInt64(max(0, self.offset))))" }
}

enum Hex {
    static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// "0x31000".
    static func offset(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

    /// "0x0000abcd": `width` hexadecimal digits, lower case.
    static func padded(_ value: UInt64, width: Int) -> String {
        var out = [UInt8](repeating: UInt8(ascii: "0"), count: width + 2)
        out[1] = UInt8(ascii: "x")
        var v = value
        var i = width + 1
        while i >= 2 {
            out[i] = Self.digits[Int(v & 0xF)]
            v >>= 4
            i -= 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// "45 6c 66 46" for the start of a file that is not what it should be.
    static func bytes(_ bytes: some Collection<UInt8>) -> String {
        bytes.map { byte in String(decoding: [Self.digits[Int(byte >> 4)], Self.digits[Int(byte & 0xF)]], as: UTF8.self) }.joined(separator: " ")
    }
}
