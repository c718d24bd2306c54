// `smtpguard replay`: logs read offline, in the order of the times in their lines, through the
// same parser and the same engine (on the configured policy) as `watch`, and a report of what
// happened and what the guard would have done: attempts, attackers, targeted usernames,
// accounts that logged in from an address that had failed many times, and the bans it would
// have issued and when.

import Foundation
import GuardCore

public struct Replayer {
    public let policy: GuardPolicy
    private var parsers: [LogParser] = []
    var evidence: [LogEvidence] = []
    private var order = 0
    public internal(set) var bytes = 0
    public internal(set) var truncatedLines = 0
    public private(set) var inputs: [ReplayReport.Input] = []
    /// Windows Security events read, when any were.
    var logons: LogonSummary?
    /// Windows logons that became attempts, per rule.
    var windowsRules: [String: Int] = [:]
    let formats: [String]
    let patterns: [String]
    let now: Timestamp

    public init(policy: GuardPolicy, formats: [String], patterns: [String], now: Timestamp) throws {
        self.policy = policy
        self.formats = formats
        self.patterns = patterns
        self.now = now
        _ = try formats.map { try LogFormats.make($0, patterns: patterns) }  // names checked here
    }

    /// Reads one file (or standard input for "-"): what it is is told by its first bytes (see
    /// `ReplayInput`). A format replay does not read is an error that says what the file
    /// looked like; each text file gets fresh formats.
    public mutating func read(path: String) throws {
        let fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ReplayError(path: path, reason: String(cString: strerror(errno))) }
        defer { if fd != 0 { close(fd) } }
        var head = [UInt8](repeating: 0, count: Self.headSize)
        var filled = 0
        while filled < head.count {
            let n = head.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 { throw ReplayError(path: path, reason: String(cString: strerror(errno))) }
            if n == 0 { break }
            filled += n
        }
        head.removeLast(head.count - filled)
        let kind = ReplayInput.sniff(head[...])
        var input = ReplayReport.Input(path: path, kind: kind.name)
        switch kind {
        case .unknown(let what):
            throw ReplayError(path: path, reason: "not a log replay reads: it looks like \(what). replay reads \(ReplayInput.readable)")
        case .evtx:
            guard fd != 0 else { throw ReplayError(path: path, reason: "an .evtx file cannot be read from standard input (its chunks are read by offset): give its path") }
            try self.readEvtx(path: path, input: &input)
        case .eventXML:
            try self.readEventXML(fd: fd, head: head, path: path, input: &input)
        case .windowsJSON:
            try self.readWindowsJSON(fd: fd, head: head, path: path, input: &input)
        case .text:
            try self.readText(fd: fd, head: head, path: path, input: &input)
        }
        self.inputs.append(input)
    }

    /// How much of a file is read first, to tell what it is.
    static let headSize = 64 * 1024

    /// Feeds every chunk of the file, `head` first, to `body`.
    func chunks(fd: Int32, head: [UInt8], path: String, _ body: (ArraySlice<UInt8>) -> Void) throws -> Int {
        var total = head.count
        if !head.isEmpty { body(head[...]) }
        guard head.count == Self.headSize else { return total }  // a shorter head was the whole input
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw ReplayError(path: path, reason: String(cString: strerror(errno))) }
            if n == 0 { return total }
            total += n
            body(buffer[0..<n])
        }
    }

    private mutating func readText(fd: Int32, head: [UInt8], path: String, input: inout ReplayReport.Input) throws {
        var parser = LogParser(formats: try self.formats.map { try LogFormats.make($0, patterns: self.patterns) }, parseTimes: true, now: self.now)
        var splitter = LineSplitter()
        var found: [LogEvidence] = []
        var shaped = false  // a line with a syslog or log time prefix was seen
        var firstLine: String?
        func take(_ line: ArraySlice<UInt8>) {
            if firstLine == nil { firstLine = String(decoding: line.prefix(120), as: UTF8.self) }
            if !shaped, SyslogLine(line) != nil || LineTime.parse(line, year: 2000, month: 1) != nil { shaped = true }
            if let e = parser.parse(line) {
                found.append(e)
                while let more = parser.next() { found.append(more) }
            }
        }
        let bytes = try self.chunks(fd: fd, head: head, path: path) { chunk in splitter.feed(chunk) { take($0) } }
        splitter.flush { take($0) }
        self.bytes += bytes
        self.truncatedLines += splitter.truncatedLines
        if parser.lines > 0 && parser.matchedCount == 0 && parser.suspectCount == 0 && !shaped {
            throw ReplayError(
                path: path,
                reason: "not a log replay reads: it is text, but no line has a syslog or log time prefix and none matches a format (\(self.formats.joined(separator: ", "))); its first line: \"\((firstLine ?? "").logSafe)\". replay reads \(ReplayInput.readable)")
        }
        // Lines without a time take the time of the line before them.
        var last = found.first(where: { $0.time != nil })?.time ?? self.now
        for index in found.indices {
            if let time = found[index].time { last = time } else { found[index].time = last }
        }
        input.units = parser.lines
        input.attempts = found.reduce(0) { $0 + $1.count }
        self.evidence += found
        self.parsers.append(parser)
    }

    /// Runs the engine over everything read and builds the report.
    public func report(top: Int = 10) -> ReplayReport {
        var report = ReplayReport()
        report.bytes = self.bytes
        report.truncatedLines = self.truncatedLines
        report.inputs = self.inputs
        report.top = top
        report.logons = self.logons
        for (rule, count) in self.windowsRules { report.rules[WindowsFormat.formatName + "/" + rule, default: 0] += count }
        for parser in self.parsers {
            report.lines += parser.lines
            report.suspectCount += parser.suspectCount
            for (rule, count) in parser.ruleCounts { report.rules[rule, default: 0] += count }
            for suspect in parser.suspects where report.suspects.count < LogParser.keptSuspects { report.suspects.append(suspect) }
        }
        // Stable sort by time: several files (mail.log and dovecot.log) interleave.
        let sorted = self.evidence.enumerated().sorted { a, b in
            a.element.time! != b.element.time! ? a.element.time! < b.element.time! : a.offset < b.offset
        }.map(\.element)
        var engine = GuardEngine(policy: self.policy, seed: 1)
        var deduplicator = Deduplicator()
        var clients: [IPAddress: Int] = [:]
        var prefixes: [IPNetwork: Int] = [:]
        var usernames: [String: Int] = [:]
        var failuresBefore: [IPAddress: Int] = [:]
        var defaultCredentials: [String: Int] = [:]
        for item in sorted {
            let time = item.time!
            if report.first == nil { report.first = time }
            report.last = time
            let fresh = deduplicator.admit(item, at: time)
            report.merged += item.count - fresh
            guard fresh > 0 else { continue }
            switch item.outcome {
            case .failure:
                report.failures += fresh
                if item.rule == "default_credential" { defaultCredentials[engine.normalize(item.username), default: 0] += fresh }
                clients[item.client, default: 0] += fresh
                prefixes[self.policy.prefixKey(item.client), default: 0] += fresh
                if !item.username.isEmpty { usernames[engine.normalize(item.username), default: 0] += fresh }
                failuresBefore[item.client, default: 0] += fresh
            case .success:
                report.successes += 1
                if item.rule == "default_credential" { report.defaultCredentialSuccesses.append(.init(time: time, username: item.username, client: item.client, failuresBefore: failuresBefore[item.client] ?? 0)) }
                let failed = failuresBefore[item.client] ?? 0
                if failed >= self.policy.compromiseAfterFailures {
                    report.compromised.append(.init(time: time, username: item.username, client: item.client, failuresBefore: failed))
                }
            default:
                report.dropped += fresh
            }
            let attempt = item.attempt(at: time)
            for _ in 0..<fresh {
                let decision = engine.decide(attempt)
                for ban in decision.bans { report.bans.append(ban) }
                for alert in decision.alerts { report.alerts.append(alert) }
            }
        }
        report.attempts = report.failures + report.successes + report.dropped
        report.topClients = Self.top(clients, top).map { ($0.key.description, $0.value) }
        report.topPrefixes = Self.top(prefixes, top).map { ($0.key.description, $0.value) }
        report.topUsernames = Self.top(usernames, top).map { ($0.key, $0.value) }
        report.clientCount = clients.count
        report.prefixCount = prefixes.count
        report.usernameCount = usernames.count
        report.defaultCredentials = Self.top(defaultCredentials, top).map { ($0.key, $0.value) }
        report.defaultCredentialAttempts = defaultCredentials.values.reduce(0, +)
        report.defaultUsernames = Self.top(usernames.filter { DefaultCredentials.isDefaultUsername($0.key) }, top).map { ($0.key, $0.value) }
        return report
    }

    static func top<K: Hashable & Comparable>(_ counts: [K: Int], _ n: Int) -> [(key: K, value: Int)] {
        Array(counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(n))
    }
}

extension IPNetwork: Comparable {
    public static func < (a: IPNetwork, b: IPNetwork) -> Bool {
        a.address != b.address ? a.address < b.address : a.prefixLength < b.prefixLength
    }
}

public struct ReplayError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(self.path): \(self.reason)" }
}

