// GuardEngine: every rule of the guard, as a pure value. It takes AuthAttempts (with the
// time in them) and returns Decisions; it never reads a clock, a socket or a file. `Guard`
// wraps it in a lock and is what sources use.
//
// Keys: client address (IPv6 by /64), network prefix (/24, /48), normalised username,
// and the (client, username) pair. Signals: failures in a short and a long window, distinct
// usernames per client, distinct clients per username, repeated passwords (by keyed hash),
// default credentials. Answers: allow (with a tarpit delay), refuse, temporary failure,
// bans with escalation and jitter, alerts.
//
// This file: the state, the keys and the check before an attempt; how failures and
// successes are counted is in GuardEngine+Counting.swift, the ban book (issue, place, lift,
// expire, restore, other guards' bans) in GuardEngine+Bans.swift.

import Foundation

public struct GuardEngine {
    public let policy: GuardPolicy
    let short: WindowClock
    let long: WindowClock
    let shortSeconds: UInt32
    let longSeconds: UInt32
    let deniedUsernames: Set<String>

    var clients: LRUTable<IPAddress, ClientRecord>
    var prefixes: LRUTable<IPAddress, PrefixRecord>
    var users: LRUTable<String, UserRecord>
    var knownPlaces: LRUTable<PlaceKey, UInt32>
    var offenses: LRUTable<BanKey, OffenseRecord>
    /// Active bans. Never evicted: they leave only by expiring or being lifted.
    var bans: [BanKey: Ban] = [:]
    var random: SplitMix64
    /// Failures in the current minute over all clients (for the attack_volume alert).
    var volumeMinute: UInt32 = 0
    var volumeCount = 0

    public init(policy: GuardPolicy, seed: UInt64 = UInt64.random(in: 0...UInt64.max)) {
        self.policy = policy
        self.short = WindowClock(window: policy.shortWindow)
        self.long = WindowClock(window: policy.longWindow)
        self.shortSeconds = UInt32(clamping: policy.shortWindow.wholeSeconds)
        self.longSeconds = UInt32(clamping: policy.longWindow.wholeSeconds)
        self.deniedUsernames = Set(policy.credentials.deniedUsernames.map { GuardEngine.normalize($0, defaultDomain: policy.credentials.defaultDomain) })
        let capacity = policy.maxTrackedKeys
        self.clients = LRUTable(capacity: capacity)
        self.prefixes = LRUTable(capacity: capacity)
        self.users = LRUTable(capacity: capacity)
        self.knownPlaces = LRUTable(capacity: capacity)
        self.offenses = LRUTable(capacity: capacity)
        self.random = SplitMix64(seed: seed)
    }

    // MARK: - Keys

    /// Usernames are compared trimmed and case-folded. With a default domain configured,
    /// a bare `user` is the same account as `user@domain`; otherwise `user` and
    /// `user@domain` are different accounts, as most mail servers treat them.
    public static func normalize(_ username: String, defaultDomain: String) -> String {
        let name = isNormalized(username) ? username : username.trimmingWhitespace().lowercased()
        if !defaultDomain.isEmpty && !name.isEmpty && !name.contains("@") {
            return name + "@" + defaultDomain.lowercased()
        }
        return name
    }

    /// True when trimming and case-folding would change nothing (the common case: no copy).
    @inline(__always)
    static func isNormalized(_ username: String) -> Bool {
        username.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
            guard let first = bytes.first, let last = bytes.last else { return true }
            if first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09 || first == 0x0D || last == 0x0A || last == 0x0D || first == 0x0A {
                return false
            }
            for byte in bytes where byte >= 0x80 || (byte >= 0x41 && byte <= 0x5A) { return false }
            return true
        } ?? false
    }

    public func normalize(_ username: String) -> String {
        GuardEngine.normalize(username, defaultDomain: self.policy.credentials.defaultDomain)
    }

    /// The key a client address is counted under: itself, or its IPv6 /64 (configurable).
    public func clientKey(_ address: IPAddress) -> IPAddress { self.policy.clientKey(address) }

    /// The network prefix a client address belongs to.
    public func prefixKey(_ address: IPAddress) -> IPNetwork { self.policy.prefixKey(address) }

    /// Networks an operator trusted at run time (the admin API), besides the configured ones.
    public var addedTrustedNetworks = NetworkList([])

    public func isTrusted(_ address: IPAddress) -> Bool {
        self.policy.trustedNetworks.contains(address) || self.addedTrustedNetworks.contains(address)
    }

    // MARK: - Deciding

    public mutating func decide(_ attempt: AuthAttempt) -> Decision {
        switch attempt.outcome {
        case .pending: return self.check(attempt)
        case .failure:
            self.land(attempt)
            return self.recordFailure(attempt, locallyRefused: [], counting: .checked)
        case .success:
            self.land(attempt)
            return self.recordSuccess(attempt)
        case .unverified:
            // The backend had the credentials and gave no verdict: a guess all the same.
            self.land(attempt)
            var decision = self.recordFailure(attempt, locallyRefused: [], counting: .unverified)
            decision.verdict = .tempFail
            return decision
        case .tempFailure, .abandoned:
            self.land(attempt)
            return Decision(verdict: .allow)
        }
    }

    /// Just before an attempt allowed after a tarpit goes to the backend: is it still allowed?
    /// A ban decided meanwhile (on another connection of the client, on another guard, by an
    /// operator) stops it here. A stopped attempt is no longer in flight and counts nothing
    /// more: the client is banned already.
    public mutating func confirm(_ attempt: AuthAttempt) -> Decision {
        if self.bans.isEmpty || self.isTrusted(attempt.client) { return Decision(verdict: .allow) }
        let now = attempt.time
        var reason: Reason?
        if self.activeBan(.ip(self.clientKey(attempt.client)), now: now) != nil {
            reason = .ipBanned
        } else if self.activeBan(.prefix(self.prefixKey(attempt.client)), now: now) != nil {
            reason = .prefixBanned
        } else if let lock = self.activeBan(.username(self.normalize(attempt.username)), now: now),
            !(lock.exemptKnownPlaces && self.isKnownPlace(attempt.client, username: attempt.username, now: now))
        {
            reason = .usernameLocked
        }
        guard let reason else { return Decision(verdict: .allow) }
        var landed = attempt
        landed.outcome = .abandoned
        self.land(landed)
        return Decision(verdict: .refuse, reasons: [reason])
    }

    /// The ban that keeps this client out at connect, if any (never for trusted networks).
    public mutating func connectionBan(for address: IPAddress, now: Timestamp) -> Ban? {
        if self.bans.isEmpty || self.isTrusted(address) { return nil }
        if let ban = self.activeBan(.ip(self.clientKey(address)), now: now) { return ban }
        return self.activeBan(.prefix(self.prefixKey(address)), now: now)
    }

    /// Before the backend sees an attempt: may it go ahead, and after how long? Attempts
    /// refused here are counted as failures at once (the source reports nothing more), and
    /// wait out the same tarpit as any other, so a refusal looks like a wrong password.
    mutating func check(_ attempt: AuthAttempt) -> Decision {
        if self.isTrusted(attempt.client) { return Decision(verdict: .allow, reasons: [.trustedNetwork]) }
        let now = attempt.time
        let seconds = now.seconds
        let client = self.clientKey(attempt.client)
        let prefix = self.prefixKey(attempt.client)
        let user = self.normalize(attempt.username)
        let userHash = fnv1a(user.utf8)
        let shortSlot = self.short.slot(seconds)
        let shortSeconds = self.shortSeconds
        let longSlot = self.long.slot(seconds)
        let (counts, _) = self.clients.update(client, make: ClientRecord.init) {
            record -> (attempts: Int, failures: Int, failuresLong: Int, pair: Int, inFlight: Int) in
            record.attempts.add(1, slot: shortSlot)
            var pair = 0
            if let i = record.pairIndex(userHash), seconds &- record.pairs[i].lastFailure <= shortSeconds {
                pair = Int(record.pairs[i].failures)
            }
            let inFlight = record.currentInFlight(now: seconds, stale: Self.staleInFlightSeconds)
            return (
                record.attempts.total(slot: shortSlot), record.failuresShort.total(slot: shortSlot),
                record.failuresLong.total(slot: longSlot), pair, inFlight
            )
        }
        let known = self.isKnownPlace(client: client, prefix: prefix.address, user: user, now: seconds)
        let delay = known ? .zero : self.tarpitDelay(failures: counts.failures)

        // A refusal by the guard takes as long as the tarpit plus what a backend usually takes.
        let refusalDelay = known ? .zero : delay + self.policy.tarpit.minRefusalDelay
        func refused(_ decision: Decision) -> Decision {
            var decision = decision
            decision.delay = refusalDelay
            if delay > .zero { decision.reasons.append(.tarpit) }
            return decision
        }
        if !self.bans.isEmpty {
            if self.activeBan(.ip(client), now: now) != nil { return refused(Decision(verdict: .refuse, reasons: [.ipBanned])) }
            if self.activeBan(.prefix(prefix), now: now) != nil { return refused(Decision(verdict: .refuse, reasons: [.prefixBanned])) }
        }
        if self.deniedUsernames.contains(user) {
            return refused(self.recordFailure(attempt, locallyRefused: [.deniedUsername], counting: .refusedHere))
        }
        if !self.bans.isEmpty, let lock = self.activeBan(.username(user), now: now), !(lock.exemptKnownPlaces && known) {
            // Refusals of a locked account count against the client, not the account: an
            // attacker hammering a lock must not stretch it for the owner.
            return refused(self.recordFailure(attempt, locallyRefused: [.usernameLocked], counting: .refusedForClient))
        }
        if known {
            self.takeOff(client, now: seconds)
            return Decision(verdict: .allow, reasons: [.knownPlace])
        }
        if counts.pair >= self.policy.limits.pairFailures {
            return refused(self.recordFailure(attempt, locallyRefused: [.pairLimit], counting: .refusedForClient))
        }
        // The guess budget: no more password checks reach the backend than the limits allow.
        // Spent (the failures and unverified guesses counted reach a limit): refused here and
        // counted, which bans the client. Not spent, but taken up by attempts now at the
        // backend or in the tarpit: told to try again later, so that parallel connections do
        // not multiply the guesses whatever the backend takes to answer.
        let budget = min(
            self.policy.limits.ipFailuresShort - counts.failures, self.policy.limits.ipFailuresLong - counts.failuresLong)
        if budget <= 0 {
            return refused(self.recordFailure(attempt, locallyRefused: [.guessBudget], counting: .budgetSpent))
        }
        if counts.attempts > self.policy.limits.attemptsPerIP || counts.inFlight >= budget {
            // Remembered: once the checks in flight land and spend the budget, the client has
            // already asked for one more, which bans it (see recordFailure).
            self.clients.modifyIfPresent(client) { $0.lastTurnedAway = max(seconds, 1) }
            return Decision(verdict: .tempFail, reasons: [counts.attempts > self.policy.limits.attemptsPerIP ? .rateLimited : .parallelAttempts])
        }
        self.takeOff(client, now: seconds)
        return Decision(verdict: .allow, delay: delay, reasons: delay > .zero ? [.tarpit] : [])
    }

    /// An AUTH exchange stays "in flight" at most this long without its result.
    static let staleInFlightSeconds: UInt32 = 300

    /// Counts an allowed attempt as in flight until its outcome lands.
    mutating func takeOff(_ client: IPAddress, now: UInt32) {
        self.clients.modifyIfPresent(client) { record in
            _ = record.currentInFlight(now: now, stale: Self.staleInFlightSeconds)
            record.inFlight &+= record.inFlight < .max ? 1 : 0
            record.inFlightSince = now
        }
    }

    /// The outcome of an attempt arrived: it is no longer in flight. Only sources that ask
    /// before an attempt (proxy, Dovecot policy) took it off; trusted clients never do.
    mutating func land(_ attempt: AuthAttempt) {
        guard attempt.source == .proxy || attempt.source == .dovecotPolicy, !self.isTrusted(attempt.client) else { return }
        self.clients.modifyIfPresent(self.clientKey(attempt.client)) { record in
            if record.inFlight > 0 { record.inFlight -= 1 }
        }
    }

    /// Attempts of a client allowed and not yet reported back.
    public func inFlight(of address: IPAddress, now: Timestamp) -> Int {
        guard var record = self.clients.peek(self.clientKey(address)) else { return 0 }
        return record.currentInFlight(now: now.seconds, stale: Self.staleInFlightSeconds)
    }

    /// The tarpit: nothing below the threshold, then initial × factor^(failures − threshold),
    /// capped.
    public func tarpitDelay(failures: Int) -> Duration {
        let tarpit = self.policy.tarpit
        guard failures >= tarpit.afterFailures, tarpit.initial > .zero else { return .zero }
        let steps = Double(failures - tarpit.afterFailures)
        let seconds = tarpit.initial.secondsDouble * pow(tarpit.factor, min(steps, 64))
        return min(tarpit.max, .milliseconds(Int64(min(seconds, 1e9) * 1000)))
    }

    /// Counts a failure towards the attack volume; at `alerts.volume_threshold` failures
    /// within a minute, an alert (once in that minute).
    mutating func noteVolume(at now: Timestamp, into decision: inout Decision) {
        let seconds = now.seconds
        let threshold = self.policy.alertVolumeThreshold
        guard threshold > 0 else { return }
        if seconds / 60 != self.volumeMinute {
            self.volumeMinute = seconds / 60
            self.volumeCount = 0
        }
        self.volumeCount += 1
        guard self.volumeCount == threshold else { return }
        decision.alerts.append(
            Alert(
                kind: .attackVolume, severity: .warning, time: now, username: "", client: nil,
                message: "attack volume: \(threshold) failed logins within a minute over all clients (alerts.volume_threshold)"))
    }
}
