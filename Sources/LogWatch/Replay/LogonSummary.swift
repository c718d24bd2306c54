// The logon summary of Windows Security events, in the spirit of Hayabusa's `logon-summary`:
// per account and per source, how many logons failed and succeeded, by which logon types and
// for which reasons, and the lockouts. Every logon counts here, also those without a client
// address (local logons, NTLM validations on a domain controller) that the engine cannot use.

import GuardCore

public struct LogonSummary: Sendable {
    public struct Tally: Sendable {
        public var failures = 0
        public var successes = 0
        public var lockouts = 0
        public var first: Timestamp?
        public var last: Timestamp?
        /// Logon type name → count.
        public var logonTypes: [String: Int] = [:]
        /// Failure reason → count.
        public var reasons: [String: Int] = [:]
        /// The other side: sources for an account, accounts for a source.
        public var peers: Set<String> = []

        mutating func add(_ logon: WindowsLogon, peer: String) {
            switch logon.result {
            case .failure:
                self.failures += 1
                let reason = logon.reason
                if !reason.isEmpty { self.reasons[reason, default: 0] += 1 }
            case .success: self.successes += 1
            case .lockout: self.lockouts += 1
            }
            if let name = logon.logonTypeName { self.logonTypes[name, default: 0] += 1 }
            if let time = logon.time {
                if self.first.map({ time < $0 }) ?? true { self.first = time }
                if self.last.map({ time > $0 }) ?? true { self.last = time }
            }
            if !peer.isEmpty { self.peers.insert(peer) }
        }
    }

    public var events = 0
    /// Events per event ID (every event read, logon or not).
    public var eventIDs: [Int: Int] = [:]
    public var logons = 0
    public var withoutAddress = 0
    public var accounts: [String: Tally] = [:]
    public var sources: [String: Tally] = [:]
    public var reasons: [String: Int] = [:]
    public var logonTypes: [String: Int] = [:]
    public var lockouts: [WindowsLogon] = []

    public init() {}

    public mutating func add(event: WindowsEvent) {
        self.events += 1
        self.eventIDs[event.eventID, default: 0] += 1
    }

    public mutating func add(_ logon: WindowsLogon) {
        if logon.result == .lockout {
            if self.lockouts.count < 1000 { self.lockouts.append(logon) }
            self.accounts[logon.account, default: Tally()].add(logon, peer: logon.workstation)
            return
        }
        self.logons += 1
        let source = Self.source(logon)
        if logon.client == nil { self.withoutAddress += 1 }
        self.accounts[logon.account, default: Tally()].add(logon, peer: source)
        self.sources[source, default: Tally()].add(logon, peer: logon.account)
        if logon.result == .failure, !logon.reason.isEmpty { self.reasons[logon.reason, default: 0] += 1 }
        if let name = logon.logonTypeName { self.logonTypes[name, default: 0] += 1 }
    }

    /// The address, else the workstation the client named, else "-".
    static func source(_ logon: WindowsLogon) -> String {
        if let client = logon.client { return client.description }
        return logon.workstation.isEmpty ? "-" : "workstation " + logon.workstation
    }

    func rows(_ table: [String: Tally], _ n: Int) -> [(key: String, value: Tally)] {
        Array(table.sorted { a, b in
            let x = a.value.failures + a.value.successes, y = b.value.failures + b.value.successes
            return a.value.failures != b.value.failures ? a.value.failures > b.value.failures : x != y ? x > y : a.key < b.key
        }.prefix(n))
    }

    static func counts(_ table: [String: Int]) -> String {
        table.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    /// "DOMAIN\\user" as "user (DOMAIN)", so the text needs no escaped backslash.
    static func shown(_ account: String) -> String {
        guard let slash = account.firstIndex(of: "\\") else { return account.logSafe }
        return String(account[account.index(after: slash)...]).logSafe + " (" + String(account[..<slash]).logSafe + ")"
    }

    func text(top: Int) -> String {
        var out = ""
        func line(_ s: String = "") { out += s + "\n" }
        line("Windows logon summary: \(self.events) events, \(self.logons) logons (\(self.withoutAddress) without a client address, which only this summary counts)")
        line("  events by ID: " + self.eventIDs.sorted { $0.key < $1.key }.map { "\($0.key) × \($0.value)" }.joined(separator: ", "))
        if !self.logonTypes.isEmpty { line("  logon types: " + Self.counts(self.logonTypes)) }
        if !self.reasons.isEmpty { line("  why logons failed: " + Self.counts(self.reasons)) }
        func table(_ title: String, _ rows: [(key: String, value: Tally)], peers: String) {
            guard !rows.isEmpty else { return }
            line()
            line(title)
            line("  \("".padding(36)) \("failed".padding(7)) \("ok".padding(5)) \(peers.padding(8)) logon types")
            for (key, tally) in rows {
                line("  \(Self.shown(key).padding(36)) \(String(tally.failures).padding(7)) \(String(tally.successes).padding(5)) \(String(tally.peers.count).padding(8)) \(Self.counts(tally.logonTypes))")
            }
        }
        table("Logons per account:", self.rows(self.accounts, top), peers: "sources")
        table("Logons per source:", self.rows(self.sources, top), peers: "accounts")
        if !self.lockouts.isEmpty {
            line()
            line("Accounts locked out:")
            for logon in self.lockouts.prefix(50) {
                line("  \(logon.time?.iso8601 ?? "-")  \(Self.shown(logon.account))" + (logon.workstation.isEmpty ? "" : "  (caller \(logon.workstation.logSafe))"))
            }
        }
        return out
    }

    func json(top: Int) -> [String: Any] {
        func tally(_ key: String, _ name: String, _ t: Tally, peers: String) -> [String: Any] {
            var row: [String: Any] = [name: key, "failures": t.failures, "successes": t.successes, "lockouts": t.lockouts, peers: t.peers.sorted(), "logon_types": t.logonTypes, "reasons": t.reasons]
            if let first = t.first { row["first"] = first.iso8601 }
            if let last = t.last { row["last"] = last.iso8601 }
            return row
        }
        return [
            "events": self.events, "logons": self.logons, "without_address": self.withoutAddress,
            "event_ids": Dictionary(uniqueKeysWithValues: self.eventIDs.map { (String($0.key), $0.value) }),
            "logon_types": self.logonTypes, "reasons": self.reasons,
            "accounts": self.rows(self.accounts, top).map { tally($0.key, "account", $0.value, peers: "sources") },
            "sources": self.rows(self.sources, top).map { tally($0.key, "source", $0.value, peers: "accounts") },
            "lockouts": self.lockouts.map { ["time": $0.time?.iso8601 ?? "", "account": $0.account, "caller": $0.workstation] },
        ]
    }
}
