// What `smtpguard replay` found, for people (`text`) and programs (`json`).

import Foundation
import GuardCore

public struct ReplayReport {
    public struct Compromise: Sendable {
        public var time: Timestamp
        public var username: String
        public var client: IPAddress
        public var failuresBefore: Int
    }

    /// One file read: what it was, how many lines (or events) it had, and the attempts in it.
    public struct Input: Sendable {
        public var path: String
        public var kind: String
        public var units = 0
        public var attempts = 0
        /// Damaged .evtx chunks, malformed events: each with where it was.
        public var problems: [String] = []
    }

    public var inputs: [Input] = []
    /// How many rows the top tables list.
    public var top = 10
    public var logons: LogonSummary?
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
        for input in self.inputs {
            let unit = input.kind.hasPrefix("Windows") && !input.kind.contains("JSON") ? "events" : "lines"
            line("\(input.path.logSafe): \(input.kind), \(input.units) \(unit), "
                + (input.attempts == 0 ? "no AUTH attempt in it" + (input.units == 0 ? " (it is empty)" : "") : "\(input.attempts) AUTH attempts"))
            for problem in input.problems.prefix(20) { line("  " + problem.logSafe) }
            if input.problems.count > 20 { line("  … and \(input.problems.count - 20) more") }
        }
        let events = self.inputs.filter { $0.kind.hasPrefix("Windows") && !$0.kind.contains("JSON") }.reduce(0) { $0 + $1.units }
        line("Read \(self.lines) lines" + (events > 0 ? " and \(events) Windows events" : "") + " (\(self.bytes) bytes)" + (self.first.map { " from \($0.iso8601) to \(self.last!.iso8601)" } ?? ""))
        line("AUTH attempts: \(self.attempts) — \(self.failures) failed, \(self.successes) succeeded, \(self.dropped) dropped after AUTH"
            + (self.merged > 0 ? " (\(self.merged) lines were the same failure seen by two programs, counted once)" : ""))
        line("Attacking addresses: \(self.clientCount) in \(self.prefixCount) networks; usernames tried: \(self.usernameCount)")
        line()
        line(events > 0 ? "Lines and events matched per rule:" : "Lines matched per rule:")
        for (rule, count) in self.rules.sorted(by: { $0.key < $1.key }) { line("  \(rule.padding(28)) \(count)") }
        if self.rules.isEmpty { line("  (none)") }
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
        if let logons = self.logons {
            line()
            out += logons.text(top: self.top)
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
        object["inputs"] = self.inputs.map { ["path": $0.path, "kind": $0.kind, "units": $0.units, "attempts": $0.attempts, "problems": $0.problems] as [String: Any] }
        if let logons = self.logons { object["windows"] = logons.json(top: self.top) }
        if let first { object["first"] = first.iso8601 }
        if let last { object["last"] = last.iso8601 }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

extension String {
    func padding(_ width: Int) -> String { self.count >= width ? self : self + String(repeating: " ", count: width - self.count) }
}
