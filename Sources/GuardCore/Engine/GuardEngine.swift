// GuardEngine: every rule of the guard, as a pure value. It takes AuthAttempts (with the
// time in them) and returns Decisions; it never reads a clock, a socket or a file. `Guard`
// wraps it in a lock and is what sources use.
//
// Keys: client address (IPv6 by /64), network prefix (/24, /48), normalised username,
// and the (client, username) pair. Signals: failures in a short and a long window, distinct
// usernames per client, distinct clients per username, repeated passwords (by keyed hash),
// default credentials. Answers: allow (with a tarpit delay), refuse, temporary failure,
// bans with escalation and jitter, alerts.

import Foundation

public struct GuardEngine {
    public let policy: GuardPolicy
    private let short: WindowClock
    private let long: WindowClock
    private let shortSeconds: UInt32
    private let longSeconds: UInt32
    private let deniedUsernames: Set<String>

    private var clients: LRUTable<IPAddress, ClientRecord>
    private var prefixes: LRUTable<IPAddress, PrefixRecord>
    private var users: LRUTable<String, UserRecord>
    private var knownPlaces: LRUTable<PlaceKey, UInt32>
    private var offenses: LRUTable<BanKey, OffenseRecord>
    /// Active bans. Never evicted: they leave only by expiring or being lifted.
    private var bans: [BanKey: Ban] = [:]
    private var random: SplitMix64
    /// Failures in the current minute over all clients (for the attack_volume alert).
    private var volumeMinute: UInt32 = 0
    private var volumeCount = 0

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
    private mutating func check(_ attempt: AuthAttempt) -> Decision {
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
    private mutating func takeOff(_ client: IPAddress, now: UInt32) {
        self.clients.modifyIfPresent(client) { record in
            _ = record.currentInFlight(now: now, stale: Self.staleInFlightSeconds)
            record.inFlight &+= record.inFlight < .max ? 1 : 0
            record.inFlightSince = now
        }
    }

    /// The outcome of an attempt arrived: it is no longer in flight. Only sources that ask
    /// before an attempt (proxy, Dovecot policy) took it off; trusted clients never do.
    private mutating func land(_ attempt: AuthAttempt) {
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
    private mutating func noteVolume(at now: Timestamp, into decision: inout Decision) {
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

    /// What a counted guess is, and so where it counts.
    enum Counting {
        /// The backend checked the password and said no: everywhere.
        case checked
        /// Refused here before the backend saw it (a denied username): everywhere.
        case refusedHere
        /// Refused here for the client's doing (a locked username, the pair limit): the client
        /// and its prefix, not the username (hammering a lock must not stretch it).
        case refusedForClient
        /// Refused here because the client's budget is spent: the client only (which bans it).
        case budgetSpent
        /// The backend had the credentials but gave no verdict: the client and the pair only.
        case unverified

        var countsUsername: Bool { self == .checked || self == .refusedHere }
        var countsPrefix: Bool { self != .budgetSpent && self != .unverified }
    }

    /// Counts a failure (reported by a source, refused here, or unverified) and issues what it
    /// earns. Refusals here count for the network prefix only while the client is not banned
    /// yet (`check` refuses banned clients before counting), and a spent budget not at all:
    /// one persistent address must not get its neighbours banned.
    private mutating func recordFailure(_ attempt: AuthAttempt, locallyRefused: [Reason], counting: Counting) -> Decision {
        var decision = Decision(verdict: .refuse, reasons: locallyRefused)
        if self.isTrusted(attempt.client) {
            decision.reasons.append(.trustedNetwork)
            return decision
        }
        let now = attempt.time
        let seconds = now.seconds
        let unverified = counting == .unverified
        if unverified { decision.reasons.append(.unverifiedGuess) } else { self.noteVolume(at: now, into: &decision) }
        let user = self.normalize(attempt.username)
        let userHash = fnv1a(user.utf8)
        let client = self.clientKey(attempt.client)
        let prefix = self.prefixKey(attempt.client)
        let heavy = attempt.credential.isDefaultPassword || DefaultCredentials.isDefaultNormalizedUsername(user)
            || self.deniedUsernames.contains(user)
        let weight = UInt16(clamping: heavy ? max(1, self.policy.credentials.defaultCredentialWeight) : 1)
        let shortSlot = self.short.slot(seconds)
        let longSlot = self.long.slot(seconds)
        let shortSeconds = self.shortSeconds
        let longSeconds = self.longSeconds
        let hash = attempt.credential.passwordHash

        // The client, and the (client, username) pair inside it.
        let (ip, _) = self.clients.update(client, make: ClientRecord.init) { record -> (short: Int, long: Int, users: Int, repeated: Bool, turnedAway: Bool) in
            let i = record.pairSlot(userHash)
            if seconds &- record.pairs[i].lastFailure > shortSeconds {
                record.pairs[i].failures = 0
                record.pairs[i].hashes = InlineArray(repeating: .max)
            }
            var repeated = false
            if let hash, record.pairs[i].hasSeen(hash) {
                // A retry of a password already counted neither counts nor prolongs the pair's block.
                repeated = true
            } else {
                record.pairs[i].failures &+= 1
                if let hash { record.pairs[i].remember(hash) }
                record.pairs[i].lastFailure = seconds
            }
            if !repeated {
                record.failuresShort.add(weight, slot: shortSlot)
                record.failuresLong.add(weight, slot: longSlot)
            }
            let users = unverified ? Int(record.userCount) : record.noteUser(userHash, now: seconds, window: longSeconds)
            let turnedAway = record.lastTurnedAway != 0 && seconds &- record.lastTurnedAway <= shortSeconds
            return (record.failuresShort.total(slot: shortSlot), record.failuresLong.total(slot: longSlot), users, repeated, turnedAway)
        }
        if ip.repeated {
            // One stale password retried (a phone, a misconfigured client) is not a new guess.
            decision.reasons.append(.repeatedPassword)
            return decision
        }
        if heavy {
            let reason: Reason = self.deniedUsernames.contains(user) ? .deniedUsername : .defaultCredential
            if !decision.reasons.contains(reason) { decision.reasons.append(reason) }
        }
        let clientHash = client.stableHash
        let net: (short: Int, long: Int, clients: Int)
        if counting.countsPrefix {
            let cap = min(self.policy.limits.prefixMinClients, PrefixRecord.clientsKept)
            net = self.prefixes.update(prefix.address, make: PrefixRecord.init) { record -> (short: Int, long: Int, clients: Int) in
                record.failuresShort.add(weight, slot: shortSlot)
                record.failuresLong.add(weight, slot: longSlot)
                let clients = record.noteClient(clientHash, now: seconds, window: longSeconds, cap: cap)
                return (record.failuresShort.total(slot: shortSlot), record.failuresLong.total(slot: longSlot), clients)
            }.result
        } else {
            net = (0, 0, 0)
        }
        let cap = self.policy.limits.ipsPerUsername + 1
        let account: (short: Int, long: Int, clients: Int)
        if counting.countsUsername {
            account = self.users.update(user, make: UserRecord.init) { record -> (short: Int, long: Int, clients: Int) in
                record.failuresShort.add(weight, slot: shortSlot)
                record.failuresLong.add(weight, slot: longSlot)
                let clients = record.noteClient(clientHash, now: seconds, window: longSeconds, cap: cap)
                return (record.failuresShort.total(slot: shortSlot), record.failuresLong.total(slot: longSlot), clients)
            }.result
        } else {
            account = (0, 0, 0)
        }

        let limits = self.policy.limits
        var ipReason: Reason?
        if ip.short > limits.ipFailuresShort || ip.long > limits.ipFailuresLong {
            ipReason = .ipFailures
        } else if ip.turnedAway && (ip.short >= limits.ipFailuresShort || ip.long >= limits.ipFailuresLong) {
            // The budget is spent by this failure, and the client already asked for more
            // checks than it had (told to try again later): that was its "one more".
            ipReason = .guessBudget
        } else if ip.users > limits.usernamesPerIP {
            ipReason = .spraying
        }
        if let ipReason, let ban = self.issueBan(.ip(client), reason: ipReason, base: self.policy.bans.ip, now: now) {
            decision.bans.append(ban)
            decision.reasons.append(ipReason)
        }
        // A prefix is banned for what several of its addresses did, never for one of them.
        if net.short > limits.prefixFailuresShort || net.long > limits.prefixFailuresLong,
            net.clients >= limits.prefixMinClients,
            let ban = self.issueBan(.prefix(prefix), reason: .prefixFailures, base: self.policy.bans.prefix, now: now)
        {
            decision.bans.append(ban)
            decision.reasons.append(.prefixFailures)
        }
        var userReason: Reason?
        if account.clients > limits.ipsPerUsername {
            userReason = .distributedAttack
        } else if account.short > limits.usernameFailuresShort || account.long > limits.usernameFailuresLong {
            userReason = .usernameFailures
        }
        if let userReason,
            let ban = self.issueBan(.username(user), reason: userReason, base: self.policy.bans.username, now: now, exemptKnownPlaces: true)
        {
            decision.bans.append(ban)
            decision.reasons.append(userReason)
            decision.alerts.append(
                Alert(
                    kind: .distributedAttack, severity: .warning, time: now, username: user, client: attempt.client,
                    message: userReason == .distributedAttack
                        ? "username \(user) is attacked from \(account.clients) or more addresses; locked for unknown places until \(ban.until)"
                        : "username \(user) failed \(account.short) times in \(self.policy.shortWindow.compactText); locked for unknown places until \(ban.until)"))
        }
        return decision
    }

    private mutating func recordSuccess(_ attempt: AuthAttempt) -> Decision {
        let now = attempt.time
        let seconds = now.seconds
        let user = self.normalize(attempt.username)
        let client = self.clientKey(attempt.client)
        let prefix = self.prefixKey(attempt.client)
        let trusted = self.isTrusted(attempt.client)

        // The weak-credential firewall: a default password accepted by the backend is refused.
        if attempt.credential.isDefaultPassword && !trusted {
            var decision = Decision(verdict: .refuse, reasons: [.weakCredentialAccepted])
            let lock = self.issueBan(
                .username(user), reason: .weakCredentialAccepted, base: self.policy.bans.weakCredentialLock, now: now,
                exemptKnownPlaces: false, escalate: false)
            if let lock { decision.bans.append(lock) }
            decision.alerts.append(
                Alert(
                    kind: .weakCredentialAccepted, severity: .critical, time: now, username: user, client: attempt.client,
                    message: "the mail server accepted a default password for account \(user) from \(attempt.client); "
                        + "the login was refused and the account is locked for untrusted networks. Change its password."))
            return decision
        }

        var decision = Decision(verdict: .allow, reasons: trusted ? [.trustedNetwork] : [])
        let shortSlot = self.short.slot(seconds)
        let userHash = fnv1a(user.utf8)
        let clientFailures = self.clients.modifyIfPresent(client) { record -> Int in
            if let i = record.pairIndex(userHash) { record.pairs[i] = PairEntry() }
            return record.failuresShort.total(slot: shortSlot)
        } ?? 0
        let prefixFailures = self.prefixes.peek(prefix.address)?.failuresShort.total(slot: shortSlot) ?? 0
        let threshold = self.policy.compromiseAfterFailures
        if !trusted && threshold > 0 && (clientFailures >= threshold || prefixFailures >= threshold * 4) {
            decision.reasons.append(.possibleCompromise)
            decision.alerts.append(
                Alert(
                    kind: .possibleCompromise, severity: .critical, time: now, username: user, client: attempt.client,
                    message: "possible compromised account: \(user) logged in from \(attempt.client) after "
                        + "\(clientFailures) failures from that address and \(prefixFailures) from \(prefix) in \(self.policy.shortWindow.compactText)"))
            // A place that guessed its way in does not become a known place.
            return decision
        }
        let until = UInt32(clamping: Int64(seconds) + self.policy.knownPlaceDuration.wholeSeconds)
        self.knownPlaces.update(PlaceKey(place: client, isPrefix: false, user: user), make: { until }) { $0 = until }
        self.knownPlaces.update(PlaceKey(place: prefix.address, isPrefix: true, user: user), make: { until }) { $0 = until }
        return decision
    }

    private func isKnownPlace(client: IPAddress, prefix: IPAddress, user: String, now: UInt32) -> Bool {
        if self.knownPlaces.count == 0 { return false }
        if let until = self.knownPlaces.peek(PlaceKey(place: client, isPrefix: false, user: user)), until > now { return true }
        if let until = self.knownPlaces.peek(PlaceKey(place: prefix, isPrefix: true, user: user)), until > now { return true }
        return false
    }

    /// True when the client has logged in as this user from here, or from its network, recently.
    public func isKnownPlace(_ address: IPAddress, username: String, now: Timestamp) -> Bool {
        self.isKnownPlace(
            client: self.clientKey(address), prefix: self.prefixKey(address).address, user: self.normalize(username), now: now.seconds)
    }

    // MARK: - Bans

    private func activeBan(_ key: BanKey, now: Timestamp) -> Ban? {
        guard let ban = self.bans[key], ban.until > now else { return nil }
        return ban
    }

    /// Issues a ban unless one is in force; escalates with the key's past offences.
    private mutating func issueBan(
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

/// A small, fast, seedable generator (for ban jitter): tests fix the seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Duration {
    /// `90s` → "1m30s": the form the configuration uses.
    public var compactText: String {
        var ms = self.nanosecondsClamped / 1_000_000
        if ms == 0 { return "0s" }
        var out = ""
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] where ms >= size {
            out += "\(ms / size)\(unit)"
            ms %= size
        }
        return out
    }
}
