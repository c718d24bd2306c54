// One 64 KiB chunk of an .evtx file: a 512-byte header (magic "ElfChnk\0", record numbers,
// the offset where free space starts, a CRC32 of the records, a CRC32 of the header itself,
// the string and template tables), then event records up to the free space:
//
//   record: u32 0x00002a2a, u32 size, u64 record id, u64 FILETIME written, binary XML,
//           u32 size again
//
// A chunk is checked before any record is read: magic, header checksum (bytes 0 ..< 120 and
// 128 ..< 512), records checksum (512 ..< free space). A chunk that fails is reported and
// skipped whole. A record that does not parse is reported and skipped alone. A chunk cut
// short by the end of the file gives the records it holds whole (its records checksum cannot
// be checked, which the damage report says).

import GuardCore

/// One event record.
public struct EvtxRecord: Sendable, Equatable {
    public var recordID: UInt64
    /// When the record was written (the record header's FILETIME).
    public var written: Timestamp
    /// The event, as an element tree (normally `<Event>`).
    public var node: EventNode

    public init(recordID: UInt64, written: Timestamp, node: EventNode) {
        self.recordID = recordID
        self.written = written
        self.node = node
    }

    /// The fields SMTPGuard reads; nil when the record holds no System/EventID.
    public var event: WindowsEvent? { WindowsEvent(node: self.node) }
}

/// 64 KiB the chunks of one file are read into in turn.
final class ChunkBuffer {
    let raw: UnsafeMutableRawBufferPointer

    init() {
        self.raw = UnsafeMutableRawBufferPointer.allocate(byteCount: EvtxChunk.size, alignment: 16)
        self.raw.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { self.raw.deallocate() }
}

public struct EvtxChunk {
    public static let size = 65_536
    static let headerSize = 512
    static let magic: [UInt8] = Array("ElfChnk\0".utf8)
    static let recordMagic: UInt32 = 0x0000_2A2A

    /// The chunk's position in the file (0 is the first) and its file offset.
    public let index: Int
    public let fileOffset: UInt64
    let file: String
    /// Keeps the bytes `parser` reads alive.
    private let storage: ChunkBuffer
    private var parser: BinXMLParser
    private var nextRecord: Int
    /// Where the records end: the free space offset, or the end of what the file holds.
    private let end: Int
    /// The chunk was cut short by the end of the file before its free space began.
    private let truncatedAt: Int?
    private var finished = false
    public private(set) var recordsRead = 0

    /// The chunk in `storage`'s first `available` bytes, checked; the damage when it fails a check.
    static func open(_ storage: ChunkBuffer, available: Int, index: Int, fileOffset: UInt64, file: String) -> Result<EvtxChunk, EvtxDamage> {
        let raw = UnsafeRawBufferPointer(rebasing: storage.raw[0..<available])
        func damage(_ problem: String) -> Result<EvtxChunk, EvtxDamage> {
            .failure(EvtxDamage(file: file, part: .chunk, chunk: index, offset: fileOffset, problem: problem))
        }
        guard available >= 8, raw.prefix(8).elementsEqual(Self.magic) else {
            return damage("not a chunk (starts with \(Hex.bytes(raw.prefix(8))), not \"ElfChnk\\0\")")
        }
        guard available >= Self.headerSize else {
            return damage("cut short by the end of the file: \(available) of \(Self.size) bytes, the header incomplete")
        }
        let stored = raw.le32(124)
        let computed = CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[128..<512]), continuing: CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<120])))
        guard stored == computed else {
            return damage("header checksum mismatch (stored \(Hex.padded(UInt64(stored), width: 8)), computed \(Hex.padded(UInt64(computed), width: 8)))")
        }
        let freeSpace = Int(raw.le32(48))
        guard freeSpace >= Self.headerSize, freeSpace <= Self.size else {
            return damage("free space offset \(Hex.offset(UInt64(freeSpace))) outside the chunk")
        }
        var truncatedAt: Int?
        if freeSpace <= available {
            let storedRecords = raw.le32(52)
            let computedRecords = CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[512..<freeSpace]))
            guard storedRecords == computedRecords else {
                return damage(
                    "event records checksum mismatch (stored \(Hex.padded(UInt64(storedRecords), width: 8)), computed \(Hex.padded(UInt64(computedRecords), width: 8)))"
                )
            }
        } else {
            truncatedAt = available
        }
        return .success(EvtxChunk(storage: storage, raw: raw, index: index, fileOffset: fileOffset, file: file, end: min(freeSpace, available), truncatedAt: truncatedAt))
    }

    private init(storage: ChunkBuffer, raw: UnsafeRawBufferPointer, index: Int, fileOffset: UInt64, file: String, end: Int, truncatedAt: Int?) {
        self.storage = storage
        self.parser = BinXMLParser(raw: raw)
        self.index = index
        self.fileOffset = fileOffset
        self.file = file
        self.end = end
        self.truncatedAt = truncatedAt
        self.nextRecord = Self.headerSize
    }

    /// The chunk's records in `bytes` (a chunk of up to 64 KiB, in memory) and what was damaged:
    /// the in-memory entry point for tests and the fuzzer.
    public static func parse(bytes: [UInt8], name: String = "chunk") -> (records: [EvtxRecord], damaged: [EvtxDamage]) {
        let storage = ChunkBuffer()
        let available = min(bytes.count, Self.size)
        bytes.withUnsafeBytes { source in
            storage.raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<available]))
        }
        switch Self.open(storage, available: available, index: 0, fileOffset: 0, file: name) {
        case .failure(let damage): return ([], [damage])
        case .success(var chunk):
            var records: [EvtxRecord] = []
            var damaged: [EvtxDamage] = []
            while let record = chunk.next(damaged: &damaged) { records.append(record) }
            return (records, damaged)
        }
    }

    // MARK: - Records

    /// A record header at `offset` that holds together: magic, a size inside the records, the size repeated at its end.
    private func recordFits(_ offset: Int) -> Bool {
        let raw = self.parser.raw
        guard offset + 28 <= self.end, raw.le32(offset) == Self.recordMagic else { return false }
        let size = Int(raw.le32(offset + 4))
        return size >= 28 && size <= self.end - offset && Int(raw.le32(offset + size - 4)) == size
    }

    /// The next record, nil after the last; damaged records are added to `damaged` and skipped.
    public mutating func next(damaged: inout [EvtxDamage]) -> EvtxRecord? {
        let raw = self.parser.raw
        while !self.finished {
            let offset = self.nextRecord
            guard offset + 24 <= self.end else { break }
            guard self.recordFits(offset) else {
                // A record the end of the file cuts: the chunk's damage report tells of it.
                if self.truncatedAt != nil, raw.le32(offset) == Self.recordMagic, offset + Int(raw.le32(offset + 4)) > self.end { break }
                // Find the next record that holds together, if there is one.
                var scan = offset + 1
                while scan + 28 <= self.end, !self.recordFits(scan) { scan += 1 }
                let problem =
                    raw.le32(offset) != Self.recordMagic
                    ? "no record signature (\(Hex.bytes(raw[offset..<(offset + 4)])))" : "record size \(raw.le32(offset + 4)) does not hold together"
                damaged.append(self.damage(at: offset, problem + (scan + 28 <= self.end ? "; next record at \(Hex.offset(self.fileOffset + UInt64(scan)))" : "; no record after it")))
                if scan + 28 > self.end { break }
                self.nextRecord = scan
                continue
            }
            let size = Int(raw.le32(offset + 4))
            self.nextRecord = offset + size
            let recordID = raw.le64(offset + 8)
            let written = WindowsTime.fromFiletime(raw.le64(offset + 16))
            do {
                let content = try self.parser.fragment(offset + 24, end: offset + size - 4)
                guard let node = content.lazy.compactMap({ if case .element(let node) = $0 { node } else { nil } }).first else {
                    damaged.append(self.damage(at: offset, "record \(recordID) holds no element"))
                    continue
                }
                self.recordsRead += 1
                return EvtxRecord(recordID: recordID, written: written, node: node)
            } catch let error as BinXMLError {
                damaged.append(self.damage(at: offset, "record \(recordID): \(error.problem) at offset \(Hex.offset(self.fileOffset + UInt64(error.offset)))"))
            } catch {
                damaged.append(self.damage(at: offset, "record \(recordID): \(error)"))
            }
        }
        if !self.finished {
            self.finished = true
            if let truncatedAt = self.truncatedAt {
                damaged.append(
                    EvtxDamage(
                        file: self.file, part: .chunk, chunk: self.index, offset: self.fileOffset,
                        problem: "cut short by the end of the file: \(truncatedAt) of \(Self.size) bytes, records checksum not checked",
                        recordsRead: self.recordsRead))
            }
        }
        return nil
    }

    private func damage(at offset: Int, _ problem: String) -> EvtxDamage {
        EvtxDamage(file: self.file, part: .record, chunk: self.index, offset: self.fileOffset + UInt64(offset), problem: problem)
    }
}
