// The .evtx reader: the real sample (read in place from ../shared/testdata/evtx, never copied
// into the project) against what python-evtx 0.8.1 prints for it; damage (a flipped byte, a
// cut-short file, a stale chunk count) beside an undamaged control each time; and every value
// type through a synthetic chunk built here.

import Foundation
import GuardCore
import Testing

@testable import LogWatch

@Suite("Windows .evtx files")
struct EvtxTests {
    static let samplePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/testdata/evtx/logon-4624-4625.evtx").standardizedFileURL.path

    static func sample() throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: self.samplePath))) }

    /// The sample's one chunk.
    static func sampleChunk() throws -> [UInt8] { Array(try self.sample()[4096..<(4096 + 65_536)]) }

    static func readAll(_ bytes: [UInt8]) throws -> (records: [EvtxRecord], damaged: [EvtxDamage]) {
        var reader = try EvtxReader(bytes: bytes, name: "test.evtx")
        var records: [EvtxRecord] = []
        while let record = try reader.next() { records.append(record) }
        return (records, reader.damaged)
    }

    /// A file of these chunks behind the sample's file header, its chunk count set (and its checksum made good).
    static func file(_ chunks: [[UInt8]], count: Int? = nil) throws -> [UInt8] {
        var header = Array(try self.sample()[0..<4096])
        let n = UInt16(count ?? chunks.count)
        header[42] = UInt8(n & 0xFF)
        header[43] = UInt8(n >> 8)
        Self.put32(&header, 124, CRC32.checksum(Array(header[0..<120])))
        return header + chunks.joined()
    }

    static func put32(_ bytes: inout [UInt8], _ at: Int, _ value: UInt32) {
        for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    /// Both chunk checksums recomputed (after an edit that should parse, or fail, past them).
    static func resealed(_ chunk: [UInt8]) -> [UInt8] {
        var chunk = chunk
        let free = Int(UInt32(chunk[48]) | UInt32(chunk[49]) << 8 | UInt32(chunk[50]) << 16 | UInt32(chunk[51]) << 24)
        Self.put32(&chunk, 52, CRC32.checksum(Array(chunk[512..<free])))
        Self.put32(&chunk, 124, CRC32.checksum(Array(chunk[0..<120]) + Array(chunk[128..<512])))
        return chunk
    }

    static func data(_ record: EvtxRecord, _ name: String) -> String? { record.event?[name] }

    // MARK: - The sample, as python-evtx reads it

    @Test("CRC32 of \"123456789\" is 0xCBF43926, split or whole")
    func crc() {
        let bytes = Array("123456789".utf8)
        #expect(CRC32.checksum(bytes) == 0xCBF4_3926)
        let split = bytes.withUnsafeBytes { raw in
            CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[5...]), continuing: CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[..<5])))
        }
        #expect(split == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
        #expect(CRC32.checksum(Array("123456788".utf8)) != 0xCBF4_3926)
    }

    @Test("the sample's four records: ids, events, times and logon fields as python-evtx prints them")
    func sampleRecords() throws {
        var reader = try EvtxReader(path: Self.samplePath)
        #expect(reader.header.chunkCount == 1 && reader.header.checksumValid && reader.header.majorVersion == 3)
        var records: [EvtxRecord] = []
        try reader.forEach { records.append($0) }
        #expect(reader.damaged.isEmpty)
        #expect(reader.recordsRead == 4)
        #expect(records.map(\.recordID) == [1, 2, 3, 4])
        let events = records.compactMap(\.event)
        #expect(events.count == 4)
        #expect(events.map(\.recordID) == [137_222, 137_223, 137_224, 137_225])
        #expect(events.map(\.eventID) == [4625, 4624, 4624, 4624])
        #expect(
            records.map { $0.node.child("System")?.child("TimeCreated")?.attribute("SystemTime") } == [
                "2020-09-09T13:18:23.627951Z", "2020-09-09T13:18:25.377119Z", "2020-09-09T13:18:27.714613Z", "2020-09-09T13:18:27.714758Z",
            ])
        #expect(events[0].time == WindowsTime.parse("2020-09-09 13:18:23.627951+00:00"))
        #expect(events.map(\.provider) == Array(repeating: "Microsoft-Windows-Security-Auditing", count: 4))
        #expect(events.map(\.channel) == Array(repeating: "Security", count: 4))
        #expect(events.map(\.computer) == Array(repeating: "MSEDGEWIN10", count: 4))
        #expect(records.map { Self.data($0, "TargetUserName") } == ["IEUser", "SYSTEM", "IEUser", "IEUser"])
        #expect(records.map { Self.data($0, "IpAddress") } == ["-", "-", "-", "-"])
        #expect(records.map { Self.data($0, "LogonType") } == ["2", "5", "2", "2"])
        #expect(records.map { Self.data($0, "SubStatus") } == ["0xc000006a", nil, nil, nil])
        #expect(Self.data(records[0], "Status") == "0xc000006d")
        #expect(Self.data(records[0], "FailureReason") == "%%2313")
        #expect(Self.data(records[0], "ProcessName") == "C:\\Program Files (x86)\\Google\\Chrome\\Application\\chrome.exe")
        #expect(Self.data(records[0], "SubjectLogonId") == "0x0000000000079e59")
        #expect(records.map { Self.data($0, "SubjectUserSid") } == [
            "S-1-5-21-3461203602-4096304019-2269080069-1000", "S-1-5-18", "S-1-5-21-3461203602-4096304019-2269080069-1000",
            "S-1-5-21-3461203602-4096304019-2269080069-1000",
        ])
        #expect(records.map { Self.data($0, "TargetLogonId") } == [nil, "0x00000000000003e7", "0x00000000001cd8f6", "0x00000000001cd964"])
        #expect(Self.data(records[1], "LogonGuid") == "{00000000-0000-0000-0000-000000000000}")
        #expect(Self.data(records[1], "LogonProcessName") == "Advapi  ")
        #expect(events[1].fields.count == 27 && events[0].fields.count == 21)
        let system = try #require(records[0].node.child("System"))
        #expect(system.child("Provider")?.attribute("Guid") == "{54849625-5478-4994-a5ba-3e3b0328c30d}")
        #expect(system.child("Keywords")?.text == "0x8010000000000000")
        #expect(system.child("Correlation")?.attribute("ActivityID") == "{74a48ca1-86f6-0001-2e8d-a474f686d601}")
        #expect(system.child("Execution")?.attributes == [EventAttribute(name: "ProcessID", value: "640"), EventAttribute(name: "ThreadID", value: "684")])
        // Optional substitutions with null values leave their attributes out (python-evtx 0.8.1
        // writes them empty: Qualifiers="", RelatedActivityID="", UserID="").
        #expect(system.child("EventID")?.attributes == [])
        #expect(system.child("Correlation")?.attribute("RelatedActivityID") == nil)
        #expect(system.child("Security") == EventNode(name: "Security"))
        #expect(records[0].node.attribute("xmlns") == "http://schemas.microsoft.com/win/2004/08/events/event")
        // The record header's FILETIME, to the 100 ns.
        #expect(records[0].written == Timestamp(nanoseconds: 1_599_657_505_377_120_000))
        #expect(records[1].written == Timestamp(nanoseconds: 1_599_657_507_714_613_200))
        let xml = records[3].node.xml
        #expect(xml.hasPrefix("<Event xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\"><System><Provider Name=\"Microsoft-Windows-Security-Auditing\""))
        #expect(xml.contains("<EventID>4624</EventID><Version>2</Version>"))
        #expect(xml.contains("<Data Name=\"TargetUserName\">IEUser</Data>"))
        #expect(xml.hasSuffix("</EventData></Event>"))
    }

    @Test("the chunk alone, in memory, reads the same as the file")
    func chunkInMemory() throws {
        let (records, damaged) = EvtxChunk.parse(bytes: try Self.sampleChunk())
        #expect(damaged.isEmpty)
        #expect(records == (try Self.readAll(try Self.sample())).records)
        #expect(records.count == 4)
    }

    // MARK: - Damage, each beside its control

    @Test("a flipped byte in one chunk's records: that chunk reported with its offset and skipped, the other read")
    func flippedRecordByte() throws {
        let good = try Self.sampleChunk()
        let control = try Self.readAll(try Self.file([good, good]))
        #expect(control.records.count == 8 && control.damaged.isEmpty)

        var bad = good
        bad[0x300] ^= 0x01
        let (records, damaged) = try Self.readAll(try Self.file([good, bad]))
        #expect(records.count == 4)
        #expect(records.compactMap(\.event).map(\.eventID) == [4625, 4624, 4624, 4624])
        #expect(damaged.count == 1)
        #expect(damaged.first?.part == .chunk && damaged.first?.chunk == 1 && damaged.first?.offset == 0x11000 && damaged.first?.skipsChunk == true)
        #expect(damaged.first?.description.hasPrefix("test.evtx: chunk 1 at offset 0x11000: event records checksum mismatch") == true)

        let first = try Self.readAll(try Self.file([bad, good]))
        #expect(first.records.count == 4 && first.damaged.map(\.offset) == [0x1000])
    }

    @Test("a flipped byte in a chunk header, and a chunk without its magic: reported and skipped")
    func damagedChunkHeader() throws {
        let good = try Self.sampleChunk()
        var header = good
        header[60] ^= 0x80
        let (records, damaged) = try Self.readAll(try Self.file([header, good]))
        #expect(records.count == 4)
        #expect(damaged.count == 1 && damaged[0].chunk == 0 && damaged[0].offset == 0x1000)
        #expect(damaged[0].problem.hasPrefix("header checksum mismatch (stored 0x334fcde2"))
        // Bytes 120 ..< 128 are outside the header checksum: the control, read as good.
        var outside = good
        outside[121] ^= 0x80
        #expect(try Self.readAll(try Self.file([outside, good])).records.count == 8)

        var magic = good
        magic[3] = UInt8(ascii: "X")
        let second = try Self.readAll(try Self.file([good, magic, good]))
        #expect(second.records.count == 8)
        #expect(second.damaged.map(\.offset) == [0x11000] && second.damaged[0].problem.hasPrefix("not a chunk (starts with 45 6c 66 58"))
    }

    @Test("a record that does not parse (checksums good) is skipped alone; the others, later ones using its template too, are read")
    func unparsableRecord() throws {
        var chunk = try Self.sampleChunk()
        #expect(chunk[0xE60 + 24 + 4] == 0x0C)  // record 2's template instance token
        let control = EvtxChunk.parse(bytes: Self.resealed(chunk))
        #expect(control.records.count == 4 && control.damaged.isEmpty)

        chunk[0xE60 + 24 + 4] = 0xFF
        let (records, damaged) = EvtxChunk.parse(bytes: Self.resealed(chunk))
        #expect(records.map(\.recordID) == [1, 3, 4])
        #expect(records.compactMap(\.event).map(\.recordID) == [137_222, 137_224, 137_225])
        #expect(damaged.count == 1 && damaged[0].part == .record && damaged[0].offset == 0xE60)
        #expect(damaged[0].problem.contains("unexpected token 0xff"))

        // A record whose size does not hold together: skipped, the next one found.
        var sized = try Self.sampleChunk()
        sized[0xE60 + 4] = 0x01
        let resized = EvtxChunk.parse(bytes: Self.resealed(sized))
        #expect(resized.records.map(\.recordID) == [1, 3, 4])
        #expect(resized.damaged.count == 1 && resized.damaged[0].problem.contains("next record at 0x1798"))
    }

    @Test("a file cut short: the records the last chunk holds whole are read, the cut reported")
    func truncated() throws {
        let sample = try Self.sample()
        let whole = try Self.readAll(sample)
        #expect(whole.records.count == 4 && whole.damaged.isEmpty)

        // Record 1 ends at chunk offset 0xE60, record 2 at 0x1798.
        let cut = try Self.readAll(Array(sample[0..<(4096 + 5000)]))
        #expect(cut.records.map(\.recordID) == [1])
        #expect(cut.damaged.count == 1 && cut.damaged[0].part == .chunk && cut.damaged[0].recordsRead == 1 && !cut.damaged[0].skipsChunk)
        #expect(cut.damaged[0].problem.contains("5000 of 65536 bytes"))

        // Cut after the free space starts: nothing lost, nothing to report.
        let tail = try Self.readAll(Array(sample[0..<(4096 + 0x2000)]))
        #expect(tail.records.count == 4 && tail.damaged.isEmpty)

        let header = try Self.readAll(Array(sample[0..<(4096 + 300)]))
        #expect(header.records.isEmpty && header.damaged.count == 1 && header.damaged[0].skipsChunk)
        #expect(header.damaged[0].problem.contains("header incomplete"))

        let none = try Self.readAll(Array(sample[0..<4096]))
        #expect(none.records.isEmpty && none.damaged.count == 1 && none.damaged[0].problem.hasPrefix("missing"))

        #expect(throws: EvtxError.self) { try EvtxReader(bytes: Array(sample[0..<100])) }
    }

    @Test("a stale chunk count: chunks past it are read while they are chunks")
    func staleChunkCount() throws {
        let good = try Self.sampleChunk()
        let stale = try Self.readAll(try Self.file([good, good, good], count: 1))
        #expect(stale.records.count == 12 && stale.damaged.isEmpty)
        // Past the count, what is not a chunk ends the log quietly (zeros Windows left, say).
        let zeros = try Self.readAll(try Self.file([good, [UInt8](repeating: 0, count: 65_536), good], count: 1))
        #expect(zeros.records.count == 4 && zeros.damaged.isEmpty)
        // Within the count it is damage.
        let counted = try Self.readAll(try Self.file([good, [UInt8](repeating: 0, count: 65_536), good], count: 3))
        #expect(counted.records.count == 8 && counted.damaged.map(\.chunk) == [1])
        // A header with a bad checksum: reported, its count not trusted, the chunks read.
        var file = try Self.file([good, good])
        file[42] = 9
        let unchecked = try Self.readAll(file)
        #expect(unchecked.records.count == 8 && unchecked.damaged.map(\.part) == [.fileHeader])
    }

    @Test("what is not an .evtx file is refused with a clear error; the sample (the control) opens")
    func notEvtx() throws {
        _ = try EvtxReader(path: Self.samplePath)
        let xml = Array("<?xml version=\"1.0\"?><Events/>".utf8)
        do {
            _ = try EvtxReader(bytes: xml, name: "export.xml")
            Issue.record("an XML file was read as .evtx")
        } catch let error as EvtxError {
            #expect(error.description == "export.xml: not an .evtx file (starts with 3c 3f 78 6d 6c 20 76 65, not \"ElfFile\\0\")")
        }
        #expect(throws: EvtxError.self) { try EvtxReader(path: "/nonexistent/Security.evtx") }
        #expect(throws: EvtxError.self) { try EvtxReader(bytes: []) }
        var version = Array(try Self.sample()[0..<4096])
        version[38] = 4
        Self.put32(&version, 124, CRC32.checksum(Array(version[0..<120])))
        #expect(throws: EvtxError.self) { try EvtxReader(bytes: version) }
        let chunk = EvtxChunk.parse(bytes: xml)
        #expect(chunk.records.isEmpty && chunk.damaged.count == 1)
    }

    // MARK: - Every value type

    @Test("every value type, rendered as python-evtx renders it")
    func valueTypes() throws {
        let chunk = SyntheticEvtx.chunk()
        let (records, damaged) = EvtxChunk.parse(bytes: chunk)
        #expect(damaged.isEmpty)
        #expect(records.count == 2)
        let record = try #require(records.first)
        let event = try #require(record.event)
        #expect(event.eventID == 4625)
        #expect(event.recordID == 77)
        #expect(record.node.child("System")?.child("EventID")?.attributes == [])
        for (name, expected) in SyntheticEvtx.expected {
            #expect(event[name] == expected, "\(name)")
        }
        let nested = try #require(record.node.child("EventData")?.elements.first(where: { $0.attribute("Name") == "Nested" }))
        #expect(nested.elements == [EventNode(name: "Inner", attributes: [EventAttribute(name: "A", value: "b")], children: [.text("x < y")])])
        #expect(record.node.xml.contains("<Data Name=\"Nested\"><Inner A=\"b\">x &lt; y</Inner></Data>"))
        // The second record uses the template by offset, with its own values.
        #expect(records[1].event?["WString"] == "bob" && records[1].event?.eventID == 4624)
        #expect(records[1].node.child("System")?.child("EventID")?.attributes == [EventAttribute(name: "Qualifiers", value: "16384")])
    }

    @Test("floats as Python's repr, FILETIME as python-evtx rounds it")
    func renderings() {
        #expect(BinXMLValues.pythonRepr(Double(Float(0.1))) == "0.10000000149011612")
        #expect(BinXMLValues.pythonRepr(1e16) == "1e+16")
        #expect(BinXMLValues.pythonRepr(1e15) == "1000000000000000.0")
        #expect(BinXMLValues.pythonRepr(0.0001) == "0.0001")
        #expect(BinXMLValues.pythonRepr(0.00001) == "1e-05")
        #expect(BinXMLValues.pythonRepr(-2.5) == "-2.5")
        #expect(BinXMLValues.pythonRepr(100) == "100.0")
        #expect(BinXMLValues.pythonRepr(1.5e-7) == "1.5e-07")
        #expect(BinXMLValues.pythonRepr(1.2345678901234567e300) == "1.2345678901234567e+300")
        #expect(BinXMLValues.pythonRepr(.infinity) == "inf")
        // python-evtx: 2020-09-09 13:18:23.627951+00:00 for the sample's first TimeCreated.
        #expect(BinXMLValues.filetime(132_441_311_036_279_515) == "2020-09-09T13:18:23.627951Z")
        #expect(BinXMLValues.filetime(132_441_311_053_771_200) == "2020-09-09T13:18:25.377119Z")
        #expect(BinXMLValues.filetime(116_444_736_000_000_000) == "1970-01-01T00:00:00.000000Z")
        #expect(WindowsTime.iso8601(Timestamp(nanoseconds: 1_599_657_503_627_951_000)) == "2020-09-09T13:18:23.627951Z")
        #expect(WindowsTime.parse(WindowsTime.iso8601(Timestamp(nanoseconds: 1_599_657_503_627_951_000))) == Timestamp(nanoseconds: 1_599_657_503_627_951_000))
    }
}

/// A chunk built here: a template with a slot for every value type, and two records using it.
enum SyntheticEvtx {
    /// Field name, value type, value bytes; what python-evtx makes of them (arrays other than
    /// wstring ones, which it cannot read: the values joined by ",").
    static let fields: [(name: String, type: UInt8, bytes: [UInt8], expected: String?)] = [
        ("WString", 0x01, utf16("alice") + [0, 0], "alice"),
        ("AnsiString", 0x02, Array("caf".utf8) + [0xE9, 0x80, 0], "café€"),
        ("Int8", 0x03, [0xFB], "-5"),
        ("UInt8", 0x04, [200], "200"),
        ("Int16", 0x05, le(UInt64(UInt16(bitPattern: -300)), 2), "-300"),
        ("UInt16", 0x06, le(60000, 2), "60000"),
        ("Int32", 0x07, le(UInt64(UInt32(bitPattern: -70000)), 4), "-70000"),
        ("UInt32", 0x08, le(4_000_000_000, 4), "4000000000"),
        ("Int64", 0x09, le(UInt64(bitPattern: -5_000_000_000), 8), "-5000000000"),
        ("UInt64", 0x0A, le(UInt64.max, 8), "18446744073709551615"),
        ("Real32", 0x0B, le(UInt64(Float(0.1).bitPattern), 4), "0.10000000149011612"),
        ("Real64", 0x0C, le(1e-05.bitPattern, 8), "1e-05"),
        ("Bool", 0x0D, le(1, 4), "True"),
        ("BoolFalse", 0x0D, le(0, 4), "False"),
        ("Binary", 0x0E, [1, 2, 3, 4], "AQIDBA=="),
        ("Guid", 0x0F, [0x25, 0x96, 0x84, 0x54, 0x78, 0x54, 0x94, 0x49, 0xA5, 0xBA, 0x3E, 0x3B, 0x03, 0x28, 0xC3, 0x0D], "{54849625-5478-4994-a5ba-3e3b0328c30d}"),
        ("SizeT", 0x10, le(4096, 8), "4096"),
        ("SizeT32", 0x10, le(4096, 4), "4096"),
        ("FileTime", 0x11, le(132_441_311_036_279_515, 8), "2020-09-09T13:18:23.627951Z"),
        ("SystemTime", 0x12, [2020, 9, 3, 9, 13, 18, 23, 627].flatMap { le(UInt64($0), 2) }, "2020-09-09T13:18:23.627000Z"),
        ("Sid", 0x13, [1, 3, 0, 0, 0, 0, 0, 5] + le(21, 4) + le(1, 4) + le(1000, 4), "S-1-5-21-1-1000"),
        ("Hex32", 0x14, le(0x1A, 4), "0x0000001a"),
        ("Hex64", 0x15, le(0x8010_0000_0000_0000, 8), "0x8010000000000000"),
        ("WStringArray", 0x81, utf16("a") + [0, 0] + utf16("bc") + [0, 0], "<string>a</string>\n<string>bc</string>\n"),
        ("UInt32Array", 0x88, le(1, 4) + le(2, 4), "1,2"),
        ("Null", 0x00, [], ""),
        ("Nested", 0x21, [], nil),  // written by `values`: its names sit at chunk offsets
    ]

    static let expected: [(String, String)] = fields.compactMap { field in field.expected.map { (field.name, $0) } }

    static func utf16(_ text: String) -> [UInt8] { text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }

    static func le(_ value: UInt64, _ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    /// Binary XML written at known chunk offsets.
    struct Writer {
        var bytes: [UInt8]
        init(at offset: Int) { self.bytes = [UInt8](repeating: 0, count: offset) }
        var offset: Int { self.bytes.count }
        mutating func u8(_ v: UInt8) { self.bytes.append(v) }
        mutating func u16(_ v: Int) { self.bytes += SyntheticEvtx.le(UInt64(v), 2) }
        mutating func u32(_ v: Int) { self.bytes += SyntheticEvtx.le(UInt64(v), 4) }
        /// A name offset, and the name inline right after it.
        mutating func name(_ text: String) {
            self.u32(self.offset + 4)
            self.u32(0)
            self.u16(0)
            self.u16(text.utf16.count)
            self.bytes += SyntheticEvtx.utf16(text)
            self.u16(0)
        }
        mutating func open(_ name: String, attributes: Bool) {
            self.u8(attributes ? 0x41 : 0x01)
            self.u16(0xFFFF)
            self.u32(0)
            self.name(name)
            if attributes { self.u32(0) }
        }
        mutating func attribute(_ name: String) {
            self.u8(0x06)
            self.name(name)
        }
        mutating func text(_ text: String) {
            self.u8(0x05)
            self.u8(0x01)
            self.u16(text.utf16.count)
            self.bytes += SyntheticEvtx.utf16(text)
        }
        mutating func substitution(_ index: Int, type: UInt8, optional: Bool = false) {
            self.u8(optional ? 0x0E : 0x0D)
            self.u16(index)
            self.u8(type)
        }
        mutating func fragmentHeader() { self.bytes += [0x0F, 0x01, 0x01, 0x00] }
    }

    /// Values: EventID's Qualifiers (optional), EventID, EventRecordID, then each field's.
    static func values(_ writer: inout Writer, qualifiers: [UInt8]?, eventID: Int, recordID: Int, first: String?) {
        var list: [(UInt8, [UInt8])] = [(qualifiers == nil ? 0x00 : 0x06, qualifiers ?? []), (0x06, le(UInt64(eventID), 2)), (0x0A, le(UInt64(recordID), 8))]
        // The nested fragment (<Inner A="b">x &lt; y</Inner>, no template) has its names inline,
        // at the chunk offsets where it will be: count the bytes before it first.
        var offset = writer.offset + 4 + 4 * (list.count + fields.count)
        for entry in list { offset += entry.1.count }
        for (i, field) in fields.enumerated() {
            var bytes = field.bytes
            if i == 0, let first { bytes = utf16(first) }
            if field.type == 0x21 {
                var nested = Writer(at: offset)
                nested.fragmentHeader()
                nested.open("Inner", attributes: true)
                nested.attribute("A")
                nested.text("b")
                nested.u8(0x02)
                nested.text("x < y")
                nested.u8(0x04)
                nested.u8(0x00)
                bytes = Array(nested.bytes[offset...])
            }
            list.append((field.type, bytes))
            offset += bytes.count
        }
        writer.u32(list.count)
        for (type, bytes) in list {
            writer.u16(bytes.count)
            writer.u8(type)
            writer.u8(0)
        }
        for (_, bytes) in list { writer.bytes += bytes }
    }

    /// The template instance, with the definition inline when `define`.
    static func instance(_ writer: inout Writer, definition: inout Int, define: Bool) {
        writer.fragmentHeader()
        writer.u8(0x0C)
        writer.u8(0x01)
        writer.u32(0x1234)
        if define { definition = writer.offset + 4 }
        writer.u32(definition)
        guard define else { return }
        writer.u32(0)  // next template
        writer.bytes += [UInt8](repeating: 0xAB, count: 16)  // GUID
        let sizeAt = writer.offset
        writer.u32(0)
        let start = writer.offset
        writer.fragmentHeader()
        writer.open("Event", attributes: true)
        writer.attribute("xmlns")
        writer.text("http://schemas.microsoft.com/win/2004/08/events/event")
        writer.u8(0x02)
        writer.open("System", attributes: false)
        writer.u8(0x02)
        writer.open("EventID", attributes: true)
        writer.attribute("Qualifiers")
        writer.substitution(0, type: 0x06, optional: true)
        writer.u8(0x02)
        writer.substitution(1, type: 0x06)
        writer.u8(0x04)
        writer.open("EventRecordID", attributes: false)
        writer.u8(0x02)
        writer.substitution(2, type: 0x0A)
        writer.u8(0x04)
        writer.u8(0x04)
        writer.open("EventData", attributes: false)
        writer.u8(0x02)
        for (i, field) in fields.enumerated() {
            writer.open("Data", attributes: true)
            writer.attribute("Name")
            writer.text(field.name)
            writer.u8(0x02)
            writer.substitution(3 + i, type: field.type, optional: true)
            writer.u8(0x04)
        }
        writer.u8(0x04)
        writer.u8(0x04)
        writer.u8(0x00)
        let size = writer.offset - start
        for i in 0..<4 { writer.bytes[sizeAt + i] = UInt8(truncatingIfNeeded: size >> (8 * i)) }
    }

    static func record(_ writer: inout Writer, id: Int, body: (inout Writer) -> Void) {
        let start = writer.offset
        writer.u32(0x2A2A)
        writer.u32(0)
        writer.bytes += le(UInt64(id), 8)
        writer.bytes += le(132_441_311_036_279_515, 8)
        body(&writer)
        writer.u8(0x00)
        let size = writer.offset - start + 4
        writer.u32(size)
        for i in 0..<4 { writer.bytes[start + 4 + i] = UInt8(truncatingIfNeeded: size >> (8 * i)) }
    }

    /// The whole 64 KiB chunk, checksums good.
    static func chunk() -> [UInt8] {
        var writer = Writer(at: 512)
        var definition = 0
        self.record(&writer, id: 1) { w in
            self.instance(&w, definition: &definition, define: true)
            self.values(&w, qualifiers: nil, eventID: 4625, recordID: 77, first: nil)
        }
        self.record(&writer, id: 2) { w in
            self.instance(&w, definition: &definition, define: false)
            self.values(&w, qualifiers: le(16384, 2), eventID: 4624, recordID: 78, first: "bob")
        }
        var chunk = writer.bytes + [UInt8](repeating: 0, count: 65_536 - writer.offset)
        chunk.replaceSubrange(0..<8, with: Array("ElfChnk\0".utf8))
        chunk.replaceSubrange(8..<40, with: le(1, 8) + le(2, 8) + le(1, 8) + le(2, 8))
        chunk.replaceSubrange(40..<44, with: le(128, 4))
        chunk.replaceSubrange(48..<52, with: le(UInt64(writer.offset), 4))
        chunk.replaceSubrange(52..<56, with: le(UInt64(CRC32.checksum(Array(chunk[512..<writer.offset]))), 4))
        chunk.replaceSubrange(124..<128, with: le(UInt64(CRC32.checksum(Array(chunk[0..<120]) + Array(chunk[128..<512]))), 4))
        return chunk
    }
}
