// What a file given to `replay` is, from its first bytes: a text log (mail logs, SMTPGuard's
// event log), Windows Security events (.evtx, Event XML, forwarded JSON), or something replay
// does not read, described well enough that the administrator sees what went wrong (a
// capture, a compressed log, a UTF-16 export, a database, a binary).

public enum ReplayInput: Equatable, Sendable {
    case text
    case evtx
    case eventXML
    case windowsJSON
    /// Not a format replay reads; what it looked like.
    case unknown(String)

    public var name: String {
        switch self {
        case .text: "text log"
        case .evtx: "Windows Security events (.evtx)"
        case .eventXML: "Windows Security events (Event XML)"
        case .windowsJSON: "Windows Security events (forwarded JSON)"
        case .unknown(let what): what
        }
    }

    public static let readable =
        "mail logs (Postfix, Dovecot, Exim, Exchange, as files or syslog/journal exports), SMTPGuard's event log (JSON lines), and Windows Security events (.evtx files, Event XML from wevtutil or Event Viewer, Winlogbeat or NXLog JSON lines)"

    /// Decides from the first bytes of the input (up to a few KiB).
    public static func sniff(_ head: ArraySlice<UInt8>) -> ReplayInput {
        func starts(_ magic: [UInt8]) -> Bool { head.hasPrefix(magic, at: head.startIndex) }
        if starts(Array("ElfFile\u{0}".utf8)) { return .evtx }
        if starts(Array("ElfChnk\u{0}".utf8)) { return .unknown("a single .evtx chunk without the file header (\"ElfChnk\"); give the whole .evtx file") }
        if starts([0xD4, 0xC3, 0xB2, 0xA1]) || starts([0xA1, 0xB2, 0xC3, 0xD4]) || starts([0x4D, 0x3C, 0xB2, 0xA1]) || starts([0xA1, 0xB2, 0x3C, 0x4D]) {
            return .unknown("a pcap packet capture (tcpdump, Wireshark)")
        }
        if starts([0x0A, 0x0D, 0x0D, 0x0A]) { return .unknown("a pcapng packet capture (Wireshark, dumpcap)") }
        if starts([0x1F, 0x8B]) { return .unknown("gzip-compressed data (give it uncompressed: zcat FILE | smtpguard replay -)") }
        if starts(Array("BZh".utf8)) { return .unknown("bzip2-compressed data (bzcat FILE | smtpguard replay -)") }
        if starts([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) { return .unknown("xz-compressed data (xzcat FILE | smtpguard replay -)") }
        if starts([0x28, 0xB5, 0x2F, 0xFD]) { return .unknown("zstd-compressed data (zstdcat FILE | smtpguard replay -)") }
        if starts([0x50, 0x4B, 0x03, 0x04]) { return .unknown("a zip archive (unpack it first)") }
        if starts(Array("SQLite format 3\u{0}".utf8)) { return .unknown("an SQLite database (SMTPGuard's state file is read by `smtpguard bans` and `smtpguard events`, not replay)") }
        if starts([0x7F, 0x45, 0x4C, 0x46]) { return .unknown("an ELF executable") }
        if starts(Array("%PDF".utf8)) { return .unknown("a PDF document") }
        if starts([0xFF, 0xFE]) || starts([0xFE, 0xFF]) {
            return .unknown("UTF-16 text (PowerShell's > writes it; convert it: iconv -f UTF-16 -t UTF-8 FILE | smtpguard replay -, or export with wevtutil qe Security /f:xml > FILE in cmd.exe)")
        }
        var body = head
        if starts([0xEF, 0xBB, 0xBF]) { body = head.dropFirst(3) }
        let sample = body.prefix(4096)
        var binary = 0
        for byte in sample where byte == 0 || (byte < 0x20 && byte != 0x09 && byte != 0x0A && byte != 0x0D && byte != 0x1B) { binary += 1 }
        if !sample.isEmpty && (sample.contains(0) || binary * 20 > sample.count) {
            let bytes = sample.prefix(8).map { WindowsCodes.hexByte($0) }.joined(separator: " ")
            return .unknown("binary data of no known format (it starts with \(bytes))")
        }
        guard let first = body.firstIndex(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }) else { return .text }
        let rest = body[first...]
        let priority = rest.count > 1 && rest.first == UInt8(ascii: "<") && rest[rest.startIndex + 1] >= 0x30 && rest[rest.startIndex + 1] <= 0x39
        if priority, EventXMLReader.findEventStart(rest.prefix(while: { $0 != 0x0A }), from: rest.startIndex) != nil { return .eventXML }  // "<13>… <Event …>"
        if rest.first == UInt8(ascii: "<") && !priority {
            if EventXMLReader.findEventStart(rest.prefix(8192), from: rest.startIndex) != nil { return .eventXML }
            return .unknown("XML, but not Windows Event XML (no <Event> element near its start)")
        }
        // JSON lines from a shipper, perhaps behind a syslog prefix, on the first line.
        let firstLine = rest.prefix(while: { $0 != 0x0A })
        if let brace = firstLine.firstIndex(of: UInt8(ascii: "{")) {
            let object = firstLine[brace...]
            if object.find(Array("\"winlog\"".utf8)) != nil || object.find(Array("\"EventID\"".utf8)) != nil { return .windowsJSON }
        }
        return .text
    }
}

extension WindowsCodes {
    static func hexByte(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }
}
