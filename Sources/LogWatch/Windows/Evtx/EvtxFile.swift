// Reads an .evtx file (the Windows event log): the file header, then the 64 KiB chunks one
// at a time with pread into one buffer, so memory stays the same whatever the file's size.
//
//   file header (4096 bytes): "ElfFile\0", u64 first chunk, u64 last chunk, u64 next record
//   id, u32 header size (128), u16 minor version, u16 major version (3), u16 header block size
//   (4096), u16 chunk count, …, u32 flags at 120, u32 CRC32 of bytes 0 ..< 120 at 124
//
// What it trusts: nothing in the file. The chunk count in the header is often stale (Windows
// updates it lazily), so chunks past it are read while they start with the chunk magic; a
// damaged chunk, or record, is reported in `damaged` and skipped, and the rest is read.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct EvtxFileHeader: Sendable, Equatable {
    public static let magic: [UInt8] = Array("ElfFile\0".utf8)
    public static let blockSize = 4096

    public var firstChunk: UInt64
    public var lastChunk: UInt64
    public var nextRecordID: UInt64
    public var headerSize: UInt32
    public var minorVersion: UInt16
    public var majorVersion: UInt16
    public var chunkCount: UInt16
    public var flags: UInt32
    public var checksum: UInt32
    /// The stored checksum matches bytes 0 ..< 120.
    public var checksumValid: Bool

    /// From the first 128 bytes of a file; throws when they are not an .evtx file header.
    static func read(_ raw: UnsafeRawBufferPointer, file: String) throws -> EvtxFileHeader {
        guard raw.count >= 8, raw.prefix(8).elementsEqual(Self.magic) else {
            throw EvtxError(file: file, problem: "not an .evtx file (starts with \(Hex.bytes(raw.prefix(8))), not \"ElfFile\\0\")")
        }
        guard raw.count >= 128 else {
            throw EvtxError(file: file, problem: "cut short: \(raw.count) bytes, less than the 128-byte file header")
        }
        let header = EvtxFileHeader(
            firstChunk: raw.le64(8), lastChunk: raw.le64(16), nextRecordID: raw.le64(24), headerSize: raw.le32(32),
            minorVersion: raw.le16(36), majorVersion: raw.le16(38), chunkCount: raw.le16(42), flags: raw.le32(120),
            checksum: raw.le32(124), checksumValid: CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<120])) == raw.le32(124))
        if header.checksumValid {
            guard header.majorVersion == 3, header.minorVersion == 1 || header.minorVersion == 2 else {
                throw EvtxError(file: file, problem: "file header: version \(header.majorVersion).\(header.minorVersion), this reader knows 3.1 and 3.2")
            }
            guard header.headerSize == 128 else {
                throw EvtxError(file: file, problem: "file header: header size \(header.headerSize), not 128")
            }
        }
        return header
    }
}

/// Where the bytes come from: a file (pread) or memory.
private final class EvtxSource {
    enum Kind {
        case file(Int32)
        case memory([UInt8])
    }

    let kind: Kind
    let size: Int
    let name: String

    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EvtxError(file: path, problem: "cannot open: \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let problem = String(cString: strerror(errno))
            close(fd)
            throw EvtxError(file: path, problem: "cannot stat: \(problem)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw EvtxError(file: path, problem: "not a regular file")
        }
        self.kind = .file(fd)
        self.size = Int(info.st_size)
        self.name = path
    }

    init(bytes: [UInt8], name: String) {
        self.kind = .memory(bytes)
        self.size = bytes.count
        self.name = name
    }

    deinit {
        if case .file(let fd) = self.kind { close(fd) }
    }

    /// Fills `buffer` from `offset` (as much as the file holds); the count read.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws -> Int {
        let count = max(0, min(buffer.count, self.size - offset))
        switch self.kind {
        case .memory(let bytes):
            bytes.withUnsafeBytes { source in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + count)]))
            }
            return count
        case .file(let fd):
            var done = 0
            while done < count {
                let n = pread(fd, buffer.baseAddress! + done, count - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw EvtxError(file: self.name, problem: "read error at offset \(Hex.offset(UInt64(offset + done))): \(String(cString: strerror(errno)))")
                }
                if n == 0 { break }  // the file got shorter
                done += n
            }
            return done
        }
    }
}

/// Reads the records of an .evtx file in order, one chunk in memory at a time.
///
///     var reader = try EvtxReader(path: "Security.evtx")
///     while let record = try reader.next() { … }
///     for damage in reader.damaged { … }
public struct EvtxReader {
    public let file: String
    public let header: EvtxFileHeader
    /// What was skipped so far: damaged chunks and records (and a file header with a bad checksum).
    public private(set) var damaged: [EvtxDamage] = []
    public private(set) var recordsRead = 0
    private let source: EvtxSource
    private let storage: ChunkBuffer
    private var chunk: EvtxChunk?
    private var nextChunk = 0
    private var done = false

    /// Opens an .evtx file; throws when it cannot be read or is not an .evtx file.
    public init(path: String) throws {
        try self.init(source: EvtxSource(path: path))
    }

    /// A whole file's bytes in memory (tests, the fuzzer); `name` stands for the path in reports.
    public init(bytes: [UInt8], name: String = "<memory>") throws {
        try self.init(source: EvtxSource(bytes: bytes, name: name))
    }

    private init(source: EvtxSource) throws {
        let storage = ChunkBuffer()
        let count = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: storage.raw[0..<128]), at: 0)
        self.header = try EvtxFileHeader.read(UnsafeRawBufferPointer(rebasing: storage.raw[0..<count]), file: source.name)
        self.source = source
        self.file = source.name
        self.storage = storage
        if !self.header.checksumValid {
            let computed = CRC32.checksum(UnsafeRawBufferPointer(rebasing: storage.raw[0..<120]))
            self.damaged.append(
                EvtxDamage(
                    file: self.file, part: .fileHeader, chunk: nil, offset: 0,
                    problem: "checksum mismatch (stored \(Hex.padded(UInt64(self.header.checksum), width: 8)), computed \(Hex.padded(UInt64(computed), width: 8))); its chunk count is not used"))
        }
    }

    /// Chunks the header vouches for (its count, when its checksum holds); chunks past them are
    /// read while they start with the chunk magic.
    private var countedChunks: Int { self.header.checksumValid ? Int(self.header.chunkCount) : 0 }

    /// The next record in file order; nil at the end. Damage on the way is added to `damaged`.
    /// Throws only when the file cannot be read (an I/O error).
    public mutating func next() throws -> EvtxRecord? {
        while true {
            if self.chunk != nil {
                if let record = self.chunk!.next(damaged: &self.damaged) {
                    self.recordsRead += 1
                    return record
                }
                self.chunk = nil
            }
            if self.done { return nil }
            try self.loadNextChunk()
        }
    }

    /// Calls `body` with each record in file order.
    public mutating func forEach(_ body: (EvtxRecord) throws -> Void) throws {
        while let record = try self.next() { try body(record) }
    }

    private mutating func loadNextChunk() throws {
        let index = self.nextChunk
        self.nextChunk += 1
        let offset = EvtxFileHeader.blockSize + index * EvtxChunk.size
        let counted = index < self.countedChunks
        guard offset < self.source.size else {
            if counted {
                self.damaged.append(
                    EvtxDamage(
                        file: self.file, part: .chunk, chunk: index, offset: UInt64(offset),
                        problem: "missing: the file ends at \(Hex.offset(UInt64(self.source.size))), its header counts \(self.countedChunks) chunks"))
            }
            self.done = true
            return
        }
        let available = try self.source.read(into: self.storage.raw, at: offset)
        if !counted, available < 8 || !self.storage.raw.prefix(8).elementsEqual(EvtxChunk.magic) {
            // Past the chunks the header counts, and not a chunk: the end of the log.
            self.done = true
            return
        }
        switch EvtxChunk.open(self.storage, available: available, index: index, fileOffset: UInt64(offset), file: self.file) {
        case .success(let chunk): self.chunk = chunk
        case .failure(let damage): self.damaged.append(damage)
        }
        if available < EvtxChunk.size { self.done = true }
    }
}
