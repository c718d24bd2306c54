// GuardEngine: the ban book. Bans are issued by the counting rules (escalating with each
// offence, with jitter), placed and lifted by an operator, expired by time, restored after a
// restart and taken from other guards of a cluster.

import Foundation

extension GuardEngine {
    // MARK: - Bans

    func activeBan(_ key: BanKey, now: Timestamp) -> Ban? {
        guard let ban = self.bans[key], ban.until > now else { return nil }
        return ban
    }

    /// Issues a ban unless one is in force; escalates with the key's past offences.
    mutating func issueBan(
        _ key: BanKey, reason: Reason, base: Duration, now: Timestamp, exemptKnownPlaces: Bool = false, escalate: Bool = true
    ) -> Ban? {
        if self.activeBan(key, now: now) != nil { return nil }
        let seconds = now.seconds
        let remember = UInt32(clamping: self.policy.bans.rememberOffenses.wholeSeconds)
        let previous = self.offenses.peek(key).flatMap { seconds &- $0.last <= remember ? Int($0.count) : nil } ?? 0
        let offense = previous + 1
        var duration = base.secondsDouble
        if escalate {
            duration *= pow(max(1, self.policy.bans.factor), Double(min(previous, 32)))
        }
        let jitter = min(max(self.policy.bans.jitter, 0), 1)
        if jitter > 0 {
            let unit = Double(self.random.next() >> 11) / Double(1 << 53)  // [0, 1)
            duration *= 1 + jitter * (2 * unit - 1)
        }
        if escalate { duration = min(duration, self.policy.bans.max.secondsDouble) }
        let ban = Ban(
            key: key, since: now, until: now + .milliseconds(Int64(max(1, duration) * 1000)), reason: reason,
            offense: offense, exemptKnownPlaces: exemptKnownPlaces)
        self.bans[key] = ban
        self.offenses.update(key, make: { OffenseRecord(count: 0, last: 0) }) { record in
            record.count = UInt16(clamping: offense)
            record.last = seconds
        }
        return ban
    }

    /// Places a ban by hand (operator, API). Replaces one in force for the same key.
    /// A username lock lets known places pass unless `exemptKnownPlaces` says otherwise.
    public mutating func placeBan(_ key: BanKey, duration: Duration, reason: Reason = .manual, now: Timestamp, exemptKnownPlaces: Bool? = nil) -> Ban {
        let offense = (self.offenses.peek(key).map { Int($0.count) } ?? 0) + 1
        let ban = Ban(
            key: key, since: now, until: now + duration, reason: reason, offense: offense,
            exemptKnownPlaces: exemptKnownPlaces ?? (key.scope == .username))
        self.bans[key] = ban
        self.offenses.update(key, make: { OffenseRecord(count: 0, last: 0) }) { record in
            record.count = UInt16(clamping: offense)
            record.last = now.seconds
        }
        return ban
    }

    /// Lifts a ban; returns it if one was in force.
    public mutating func liftBan(_ key: BanKey) -> Ban? {
        self.bans.removeValue(forKey: key)
    }

    /// Removes the bans that have run out and returns them.
    public mutating func expireBans(now: Timestamp) -> [Ban] {
        var expired: [Ban] = []
        for (key, ban) in self.bans where ban.until <= now {
            expired.append(ban)
            self.bans.removeValue(forKey: key)
        }
        return expired.sorted { $0.until < $1.until }
    }

    // MARK: - Restoring after a restart

    /// Rebuilds the state a previous run left: the settled attempts replayed in order rebuild
    /// the windows, distinct counts and known places; then the bans are exactly the stored
    /// ones in force (a ban the replay re-derived but an operator had lifted stays lifted), and
    /// each key's offence count is the one its last stored ban had.
    public mutating func restore(attempts: [AuthAttempt], activeBans: [Ban], banHistory: [Ban]) {
        for attempt in attempts where attempt.outcome != .pending {
            _ = self.decide(attempt)
        }
        self.bans = [:]
        for ban in activeBans { self.bans[ban.key] = ban }
        var latest: [BanKey: Ban] = [:]
        for ban in banHistory + activeBans where (latest[ban.key]?.since ?? Timestamp(nanoseconds: .min)) < ban.since {
            latest[ban.key] = ban
        }
        for (key, ban) in latest {
            self.offenses.update(key, make: { OffenseRecord(count: 0, last: 0) }) { record in
                record.count = UInt16(clamping: ban.offense)
                record.last = ban.since.seconds
            }
        }
    }

    // MARK: - Other guards of a cluster

    /// A ban another guard issued: in force here too, with its offence count (replaces a ban
    /// this guard derived itself for the same key, so every guard holds the same one).
    public mutating func applyRemoteBan(_ ban: Ban) {
        self.bans[ban.key] = ban
        self.offenses.update(ban.key, make: { OffenseRecord(count: 0, last: 0) }) { record in
            record.count = max(record.count, UInt16(clamping: ban.offense))
            record.last = max(record.last, ban.since.seconds)
        }
    }

    public func activeBans(now: Timestamp) -> [Ban] {
        self.bans.values.filter { $0.until > now }.sorted { $0.since < $1.since }
    }

    public func ban(for key: BanKey, now: Timestamp) -> Ban? { self.activeBan(key, now: now) }

    // MARK: - Introspection

    public struct Counts: Sendable, Equatable {
        public var clients: Int
        public var prefixes: Int
        public var usernames: Int
        public var knownPlaces: Int
        public var bans: Int
    }

    public var counts: Counts {
        Counts(
            clients: self.clients.count, prefixes: self.prefixes.count, usernames: self.users.count,
            knownPlaces: self.knownPlaces.count, bans: self.bans.count)
    }

    /// Failures counted for a client in the short window, as the tarpit sees them.
    public func recentFailures(of address: IPAddress, now: Timestamp) -> Int {
        self.clients.peek(self.clientKey(address))?.failuresShort.total(slot: self.short.slot(now.seconds)) ?? 0
    }
}
