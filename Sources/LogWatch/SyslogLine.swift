// Splitting a log line into its time, program and message: traditional syslog
// ("Nov 23 02:03:14 host program[pid]: message"), RFC 3339 ("2026-11-23T02:03:14.5+00:00 host
// program[pid]: message"), and Dovecot's own file ("Nov 23 02:03:14 auth: Info: …").

public struct SyslogLine: Sendable {
    public var program: ArraySlice<UInt8>
    public var message: ArraySlice<UInt8>

    /// nil when the line has no "program: " part where one belongs.
    public init?(_ line: ArraySlice<UInt8>) {
        var i = line.startIndex
        func skipWord() {
            while i < line.endIndex && line[i] != 0x20 { i += 1 }
            while i < line.endIndex && line[i] == 0x20 { i += 1 }
        }
        guard let first = line.first else { return nil }
        if first >= 0x30 && first <= 0x39 {
            skipWord()  // RFC 3339 time
        } else {
            skipWord(); skipWord(); skipWord()  // "Nov 23 02:03:14" ("Nov  3" has two spaces: skipWord eats runs)
        }
        // Either "host program[pid]: " or "program: " (Dovecot's own file has no host).
        let start = i
        var wordEnd = i
        while wordEnd < line.endIndex && line[wordEnd] != 0x20 { wordEnd += 1 }
        var programStart = start
        if wordEnd > start, line[wordEnd - 1] != UInt8(ascii: ":") {
            programStart = wordEnd + 1  // that word was the host
        }
        guard programStart < line.endIndex else { return nil }
        var j = programStart
        while j < line.endIndex - 1 && !(line[j] == UInt8(ascii: ":") && line[j + 1] == 0x20) {
            if line[j] == 0x20 { return nil }
            j += 1
        }
        guard j < line.endIndex - 1 else { return nil }
        var programEnd = j
        if let bracket = line[programStart..<j].firstIndex(of: UInt8(ascii: "[")) { programEnd = bracket }
        self.program = line[programStart..<programEnd]
        self.message = line[(j + 2)...]
    }
}
