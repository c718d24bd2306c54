// Where every log source's evidence meets the engine: failures seen twice (front end and
// Dovecot's auth process) are counted once, each counted attempt is decided by the same Guard
// the proxy uses, and the attempt is recorded as an event (the bans it leads to are
// published by the Guard to the firewall, the state and the event log).

import GuardCore
import Synchronization

public final class EvidenceFeeder: Sendable {
    public let guardEngine: Guard
    private let events: any EventSink
    private let deduplicator = Mutex(Deduplicator())
    private let counters = Mutex(Counters())

    public struct Counters: Sendable, Equatable {
        public var attempts = 0
        public var merged = 0
    }

    public init(guardEngine: Guard, events: any EventSink) {
        self.guardEngine = guardEngine
        self.events = events
    }

    public var counts: Counters { self.counters.withLock { $0 } }

    /// Feeds one piece of evidence seen at `now` (a live watcher uses the time it read the line).
    public func feed(_ evidence: LogEvidence, now: Timestamp) {
        let fresh = self.deduplicator.withLock { $0.admit(evidence, at: now) }
        self.counters.withLock {
            $0.attempts += fresh
            $0.merged += evidence.count - fresh
        }
        guard fresh > 0 else { return }
        let attempt = evidence.attempt(at: now)
        let code = evidence.outcome == .success ? 235 : evidence.outcome == .failure ? 535 : 0
        for _ in 0..<fresh {
            let decision = self.guardEngine.decide(attempt)
            self.events.record(.attempt(AttemptRecord(attempt: attempt, session: "\(evidence.format)/\(evidence.rule)", replyCode: code, decision: decision)))
        }
    }
}
