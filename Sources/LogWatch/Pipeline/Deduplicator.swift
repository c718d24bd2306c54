// One failed guess often leaves two lines: Postfix's "SASL PLAIN authentication failed" and,
// from the Dovecot auth process that Postfix asked, "Password mismatch". Counting both would
// ban at half the configured failures. Lines come in two layers, the front end that spoke to
// the client (Postfix, Exim, Exchange, Dovecot's login processes) and the authentication
// process (Dovecot auth / auth-worker); a failure from one layer pairs with an unpaired failure
// from the other layer for the same client and username (or an unknown username) seen within
// a few seconds, and the pair counts once. Within one layer nothing is merged.

import GuardCore

public struct Deduplicator: Sendable {
    public let window: Duration
    private var pending: [IPAddress: [Entry]] = [:]
    private var checks = 0

    struct Entry {
        var time: Timestamp
        var layer: Layer
        var username: String
        var remaining: Int
    }

    enum Layer { case frontEnd, authProcess }

    public init(window: Duration = .seconds(5)) {
        self.window = window
    }

    static func layer(_ evidence: LogEvidence) -> Layer {
        evidence.format == "dovecot" && evidence.rule != "auth_failed_attempts" ? .authProcess : .frontEnd
    }

    /// How many of the evidence's attempts are new (0 when all were seen from the other layer).
    public mutating func admit(_ evidence: LogEvidence, at time: Timestamp) -> Int {
        guard evidence.outcome == .failure else { return evidence.count }
        self.checks += 1
        if self.checks % 4096 == 0 { self.sweep(now: time) }
        let layer = Self.layer(evidence)
        var remaining = evidence.count
        var entries = self.pending[evidence.client] ?? []
        entries.removeAll { time - $0.time > self.window || $0.remaining == 0 }
        for index in entries.indices where remaining > 0 && entries[index].layer != layer {
            let other = entries[index].username
            guard other.isEmpty || evidence.username.isEmpty || other == evidence.username else { continue }
            let paired = min(remaining, entries[index].remaining)
            entries[index].remaining -= paired
            remaining -= paired
        }
        entries.removeAll { $0.remaining == 0 }
        if remaining > 0 {
            entries.append(Entry(time: time, layer: layer, username: evidence.username, remaining: remaining))
        }
        self.pending[evidence.client] = entries.isEmpty ? nil : entries
        return remaining
    }

    private mutating func sweep(now: Timestamp) {
        self.pending = self.pending.filter { _, entries in entries.contains { now - $0.time <= self.window } }
    }
}
