// The .evtx reader under fuzzing: the bytes as a whole file, as a chunk, and as the records
// of a chunk whose header (magic, free space, both checksums) is made good around them, so
// that mutations reach the records and their binary XML instead of stopping at a checksum.
// Invariants: nothing crashes or hangs; every record read renders; the reader and the
// in-memory chunk parser agree on the same chunk.

import LogWatch

extension FuzzTargets {
    public static func evtx(_ data: [UInt8]) {
        if var reader = try? EvtxReader(bytes: data, name: "fuzz.evtx") {
            var count = 0
            while let record = try? reader.next() {
                self.check(record)
                count += 1
            }
            precondition(count == reader.recordsRead, "records returned and counted differ")
            for damage in reader.damaged { precondition(damage.offset < UInt64(max(data.count, 4096)) + 65_536, "damage reported past the file") }
        }
        for record in EvtxChunk.parse(bytes: data, name: "fuzz").records { self.check(record) }

        let chunk = self.sealedChunk(records: data)
        let parsed = EvtxChunk.parse(bytes: chunk, name: "fuzz")
        precondition(!parsed.damaged.contains { $0.part == .chunk }, "a sealed chunk was refused: \(parsed.damaged)")
        for record in parsed.records { self.check(record) }
        var file = self.fileHeader(chunkCount: 1)
        file += chunk
        guard var reader = try? EvtxReader(bytes: file, name: "fuzz.evtx") else { preconditionFailure("a sealed file was refused") }
        var records: [EvtxRecord] = []
        while let record = try? reader.next() { records.append(record) }
        precondition(records == parsed.records, "the file reader and the chunk parser disagree")
    }

    private static func check(_ record: EvtxRecord) {
        let xml = record.node.xml
        precondition(xml.hasPrefix("<") && xml.hasSuffix(">"), "a record rendered as \(xml.prefix(40))")
        _ = record.event
    }

    static func le(_ value: UInt64, _ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    /// A 64 KiB chunk holding `records` (at most what fits) from offset 512, checksums good.
    public static func sealedChunk(records: [UInt8]) -> [UInt8] {
        let body = records.prefix(65_536 - 512)
        var chunk = [UInt8](repeating: 0, count: 512)
        chunk.replaceSubrange(0..<8, with: Array("ElfChnk\0".utf8))
        chunk.replaceSubrange(40..<44, with: self.le(128, 4))
        chunk.replaceSubrange(48..<52, with: self.le(UInt64(512 + body.count), 4))
        chunk += body
        chunk.replaceSubrange(52..<56, with: self.le(UInt64(CRC32.checksum(Array(body))), 4))
        chunk.replaceSubrange(124..<128, with: self.le(UInt64(CRC32.checksum(Array(chunk[0..<120]) + Array(chunk[128..<512]))), 4))
        chunk += [UInt8](repeating: 0, count: 65_536 - chunk.count)
        return chunk
    }

    /// A 4096-byte file header (version 3.1), checksum good.
    public static func fileHeader(chunkCount: Int) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 4096)
        header.replaceSubrange(0..<8, with: Array("ElfFile\0".utf8))
        header.replaceSubrange(32..<44, with: self.le(128, 4) + self.le(1, 2) + self.le(3, 2) + self.le(4096, 2) + self.le(UInt64(chunkCount), 2))
        header.replaceSubrange(124..<128, with: self.le(UInt64(CRC32.checksum(Array(header[0..<120]))), 4))
        return header
    }
}
