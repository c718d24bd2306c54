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
    private var evidence: [LogEvidence] = []
    private var order = 0
    public private(set) var bytes = 0
    public private(set) var truncatedLines = 0
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

    /// Reads one file (or standard input for "-"); each file gets fresh formats.
    public mutating func read(path: String) throws {
        let fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ReplayError(path: path, reason: String(cString: strerror(errno))) }
        defer { if fd != 0 { close(fd) } }
        var parser = LogParser(formats: try self.formats.map { try LogFormats.make($0, patterns: self.patterns) }, parseTimes: true, now: self.now)
        var splitter = LineSplitter()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var found: [LogEvidence] = []
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw ReplayError(path: path, reason: String(cString: strerror(errno))) }
            if n == 0 { break }
            self.bytes += n
            splitter.feed(buffer[0..<n]) { line in
                if let e = parser.parse(line) { found.append(e) }
            }
        }
        splitter.flush { line in
            if let e = parser.parse(line) { found.append(e) }
        }
        self.truncatedLines += splitter.truncatedLines
        // Lines without a time take the time of the line before them.
        var last = found.first(where: { $0.time != nil })?.time ?? self.now
        for index in found.indices {
            if let time = found[index].time { last = time } else { found[index].time = last }
        }
        self.evidence += found
        self.parsers.append(parser)
    }

    /// Runs the engine over everything read and builds the report.
    public func report(top: Int = 10) -> ReplayReport {
        var report = ReplayReport()
        report.bytes = self.bytes
        report.truncatedLines = self.truncatedLines
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

public struct ReplayReport {
    public struct Compromise: Sendable {
        public var time: Timestamp
        public var username: String
        public var client: IPAddress
        public var failuresBefore: Int
    }

    public var bytes = 0
    public var lines = 0
    public var truncatedLines = 0
    public var rules: [String: Int] = [:]
    public var suspectCount = 0
    public var suspects: [String] = []
    public var attempts = 0
    public var failures = 0
    public var successes = 0
    public var dropped = 0
    public var merged = 0
    public var first: Timestamp?
    public var last: Timestamp?
    public var clientCount = 0
    public var prefixCount = 0
    public var usernameCount = 0
    public var topClients: [(String, Int)] = []
    public var topPrefixes: [(String, Int)] = []
    public var topUsernames: [(String, Int)] = []
    public var defaultUsernames: [(String, Int)] = []
    public var compromised: [Compromise] = []
    /// From the guard's own event log: failures with a default password, per username.
    public var defaultCredentials: [(String, Int)] = []
    public var defaultCredentialAttempts = 0
    /// Logins the backend accepted with a default password (the proxy refused them).
    public var defaultCredentialSuccesses: [Compromise] = []
    public var bans: [Ban] = []
    public var alerts: [Alert] = []

    /// For people.
    public var text: String {
        var out = ""
        func line(_ s: String = "") { out += s + "\n" }
        line("Read \(self.lines) lines (\(self.bytes) bytes)" + (self.first.map { " from \($0.iso8601) to \(self.last!.iso8601)" } ?? ""))
        line("AUTH attempts: \(self.attempts) — \(self.failures) failed, \(self.successes) succeeded, \(self.dropped) dropped after AUTH"
            + (self.merged > 0 ? " (\(self.merged) lines were the same failure seen by two programs, counted once)" : ""))
        line("Attacking addresses: \(self.clientCount) in \(self.prefixCount) networks; usernames tried: \(self.usernameCount)")
        line()
        line("Lines matched per rule:")
        for (rule, count) in self.rules.sorted(by: { $0.key < $1.key }) { line("  \(rule.padding(28)) \(count)") }
        if self.suspectCount > 0 {
            line("  \("unmatched suspects".padding(28)) \(self.suspectCount)   (lines that look like AUTH failures but match no rule)")
        }
        if self.truncatedLines > 0 { line("  \("lines cut at the length limit".padding(28)) \(self.truncatedLines)") }
        func table(_ title: String, _ rows: [(String, Int)]) {
            guard !rows.isEmpty else { return }
            line()
            line(title)
            for (key, count) in rows { line("  \(key.logSafe.padding(40)) \(count)") }
        }
        table("Top attacking addresses (failures):", self.topClients)
        table("Top attacking networks (failures):", self.topPrefixes)
        table("Most targeted usernames (failures):", self.topUsernames)
        table("Default or guessable usernames tried (the seed lists):", self.defaultUsernames)
        if self.defaultCredentialAttempts > 0 {
            table("Default credentials tried (from the guard's event log: \(self.defaultCredentialAttempts) attempts), per username:", self.defaultCredentials)
        }
        if !self.defaultCredentialSuccesses.isEmpty {
            line()
            line("Default credentials the mail server accepted (weak accounts, change their passwords):")
            for c in self.defaultCredentialSuccesses.prefix(50) { line("  \(c.time.iso8601)  \(c.username.logSafe)  from \(c.client)") }
        }
        line()
        if self.compromised.isEmpty {
            line("Likely compromised accounts: none (no login succeeded from an address that had failed many times)")
        } else {
            line("Likely compromised accounts (a login succeeded from an address that had failed before):")
            for c in self.compromised.prefix(50) { line("  \(c.time.iso8601)  \(c.username.logSafe)  from \(c.client)  after \(c.failuresBefore) failures") }
        }
        line()
        line("Bans the configured policy would have issued: \(self.bans.count)")
        for ban in self.bans.prefix(50) {
            line("  \(ban.since.iso8601)  \(ban.key.scope.rawValue.padding(8)) \(ban.key.description.logSafe.padding(40)) \(ban.reason.rawValue) for \(ban.duration.compactText)\(ban.offense > 1 ? " (offence \(ban.offense))" : "")")
        }
        if self.bans.count > 50 { line("  … and \(self.bans.count - 50) more (--json lists them all)") }
        if !self.suspects.isEmpty {
            line()
            line("First unmatched suspects (a log format may have changed):")
            for s in self.suspects { line("  " + s.logSafe) }
        }
        return out
    }

    /// For programs.
    public var json: String {
        func pairs(_ rows: [(String, Int)], _ key: String) -> [[String: Any]] { rows.map { [key: $0.0, "failures": $0.1] } }
        var object: [String: Any] = [
            "lines": self.lines, "bytes": self.bytes, "truncated_lines": self.truncatedLines,
            "attempts": self.attempts, "failures": self.failures, "successes": self.successes, "dropped": self.dropped, "merged": self.merged,
            "rules": self.rules, "suspects": self.suspectCount, "suspect_samples": self.suspects,
            "clients": self.clientCount, "networks": self.prefixCount, "usernames": self.usernameCount,
            "top_clients": pairs(self.topClients, "address"), "top_networks": pairs(self.topPrefixes, "network"),
            "top_usernames": pairs(self.topUsernames, "username"), "default_usernames": pairs(self.defaultUsernames, "username"),
            "default_credentials": pairs(self.defaultCredentials, "username"), "default_credential_attempts": self.defaultCredentialAttempts,
            "default_credentials_accepted": self.defaultCredentialSuccesses.map { ["time": $0.time.iso8601, "username": $0.username, "client": $0.client.description] },
            "compromised": self.compromised.map { ["time": $0.time.iso8601, "username": $0.username, "client": $0.client.description, "failures_before": $0.failuresBefore] },
            "bans": self.bans.map {
                ["time": $0.since.iso8601, "scope": $0.key.scope.rawValue, "key": $0.key.description, "reason": $0.reason.rawValue,
                 "seconds": Int($0.duration.components.seconds), "offense": $0.offense] as [String: Any]
            },
            "alerts": self.alerts.map { ["time": $0.time.iso8601, "kind": $0.kind.rawValue, "username": $0.username, "message": $0.message] },
        ]
        if let first { object["first"] = first.iso8601 }
        if let last { object["last"] = last.iso8601 }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

extension String {
    func padding(_ width: Int) -> String { self.count >= width ? self : self + String(repeating: " ", count: width - self.count) }
}
