// Guard: the one engine every source feeds. A lock around GuardEngine, the clock, and the
// event sink that hears of every ban, unban and alert the engine issues.

import Synchronization

public final class Guard: Sendable {
    public let policy: GuardPolicy
    public let clock: any GuardClock
    private let engine: Mutex<GuardEngine>
    private let sending: Mutex<SendingLimiter>
    private let sink: any EventSink

    public init(policy: GuardPolicy, clock: any GuardClock = SystemClock(), events: any EventSink = DiscardingEventSink(), seed: UInt64? = nil) {
        self.policy = policy
        self.clock = clock
        self.sink = events
        self.engine = Mutex(GuardEngine(policy: policy, seed: seed ?? UInt64.random(in: 0...UInt64.max)))
        self.sending = Mutex(SendingLimiter(policy: policy.sending, capacity: min(policy.maxTrackedKeys, 1_000_000)))
    }

    /// Decides on an attempt, and records the bans and alerts it issued.
    public func decide(_ attempt: AuthAttempt) -> Decision {
        let decision = self.engine.withLock { $0.decide(attempt) }
        self.publish(decision)
        return decision
    }

    /// Just before an attempt allowed after a tarpit goes to the backend: still allowed, or
    /// refused for a ban decided meanwhile (see `GuardEngine.confirm`).
    public func confirm(_ attempt: AuthAttempt) -> Decision {
        self.engine.withLock { $0.confirm(attempt) }
    }

    /// Rebuilds the engine from stored state at start, before the first connection. Nothing
    /// is published: these bans and alerts were published when they happened.
    public func restore(attempts: [AuthAttempt], activeBans: [Ban], banHistory: [Ban]) {
        self.engine.withLock { $0.restore(attempts: attempts, activeBans: activeBans, banHistory: banHistory) }
    }

    /// Attempts another guard of the cluster saw: they count here as if seen here. A ban they
    /// lead to is issued and published here (the other guards may not have seen this guard's
    /// own attempts yet); their alerts were raised where they were seen.
    public func absorb(_ attempts: [AuthAttempt]) {
        guard !attempts.isEmpty else { return }
        let bans = self.engine.withLock { engine -> [Ban] in
            var bans: [Ban] = []
            for attempt in attempts where attempt.outcome != .pending { bans += engine.decide(attempt).bans }
            return bans
        }
        for ban in bans { self.sink.record(.ban(ban)) }
    }

    /// A ban published by another guard.
    public func applyRemoteBan(_ ban: Ban) {
        self.engine.withLock { $0.applyRemoteBan(ban) }
    }

    /// A ban lifted on another guard (by an operator): lifted here too, without a second event.
    public func liftRemoteBan(_ key: BanKey) {
        _ = self.engine.withLock { $0.liftBan(key) }
    }

    /// The ban in force against a connecting client, if any.
    public func connectionBan(for address: IPAddress) -> Ban? {
        let now = self.clock.now()
        return self.engine.withLock { $0.connectionBan(for: address, now: now) }
    }

    public func isTrusted(_ address: IPAddress) -> Bool { self.engine.withLock { $0.isTrusted(address) } }

    /// Networks an operator trusted at run time (the admin API), besides the configured ones:
    /// from now on they are never banned, tarpitted or locked out.
    public func setAddedTrustedNetworks(_ networks: [IPNetwork]) {
        self.engine.withLock { $0.addedTrustedNetworks = NetworkList(networks) }
    }

    /// The key a client is counted under (IPv6 grouped by its configured prefix).
    public func clientKey(_ address: IPAddress) -> IPAddress { self.policy.clientKey(address) }

    /// Drops bans that have run out and reports each as an unban.
    @discardableResult
    public func expireBans() -> [Ban] {
        let now = self.clock.now()
        let expired = self.engine.withLock { $0.expireBans(now: now) }
        for ban in expired { self.sink.record(.unban(ban, time: now, lifted: false)) }
        return expired
    }

    @discardableResult
    public func placeBan(_ key: BanKey, duration: Duration, reason: Reason = .manual) -> Ban {
        let now = self.clock.now()
        let ban = self.engine.withLock { $0.placeBan(key, duration: duration, reason: reason, now: now) }
        self.sink.record(.ban(ban))
        return ban
    }

    @discardableResult
    public func liftBan(_ key: BanKey) -> Ban? {
        let now = self.clock.now()
        let ban = self.engine.withLock { $0.liftBan(key) }
        if let ban { self.sink.record(.unban(ban, time: now, lifted: true)) }
        return ban
    }

    /// May an authenticated user start a message or add recipients? Counts it when yes. A
    /// locked account (past a limit with `sending.lock_account`, a weak credential, an
    /// operator's lock) sends nothing. Over a limit: an alert (one per user and
    /// `sending.alert_interval`), the lock when configured, and a `sending` event.
    public func checkSending(_ request: SendingRequest) -> SendingDecision {
        guard self.policy.sending.enabled else { return .allow }
        var request = request
        request.username = self.normalize(request.username)
        let username = request.username
        guard !username.isEmpty else { return .allow }
        if let lock = self.sendingLock(normalized: username) {
            let decision = SendingDecision(allowed: false, lock: lock)
            self.sink.record(.sending(SendingRecord(request: request, decision: decision)))
            return decision
        }
        var decision = self.sending.withLock { $0.check(request, username: username) }
        guard !decision.allowed else { return decision }
        if self.policy.sending.lockAccount {
            let lock = self.engine.withLock {
                $0.placeBan(.username(username), duration: SendingPolicy.lockDuration, reason: .sendingLimit, now: request.time, exemptKnownPlaces: false)
            }
            decision.lock = lock
            self.sink.record(.ban(lock))
        }
        if let alert = decision.alert { self.sink.record(.alert(alert)) }
        self.sink.record(.sending(SendingRecord(request: request, decision: decision)))
        return decision
    }

    /// The lock that keeps an authenticated user from sending, if any.
    public func sendingLock(for username: String) -> Ban? { self.sendingLock(normalized: self.normalize(username)) }

    private func sendingLock(normalized username: String) -> Ban? {
        guard let lock = self.ban(for: .username(username)), Self.stopsSending(lock) else { return nil }
        return lock
    }

    /// Locks that stop an authenticated user from sending: not those a password-guessing
    /// attack on the name put there (the owner logged in, so it is not the attacker).
    static func stopsSending(_ lock: Ban) -> Bool {
        switch lock.reason {
        case .sendingLimit, .weakCredentialAccepted, .manual: return true
        default: return false
        }
    }

    public func activeBans() -> [Ban] {
        let now = self.clock.now()
        return self.engine.withLock { $0.activeBans(now: now) }
    }

    public func ban(for key: BanKey) -> Ban? {
        let now = self.clock.now()
        return self.engine.withLock { $0.ban(for: key, now: now) }
    }

    public var counts: GuardEngine.Counts { self.engine.withLock { $0.counts } }

    /// AUTH attempts of a client allowed and not yet reported back.
    public func inFlight(of address: IPAddress) -> Int {
        let now = self.clock.now()
        return self.engine.withLock { $0.inFlight(of: address, now: now) }
    }

    public func recentFailures(of address: IPAddress) -> Int {
        let now = self.clock.now()
        return self.engine.withLock { $0.recentFailures(of: address, now: now) }
    }

    public func isKnownPlace(_ address: IPAddress, username: String) -> Bool {
        let now = self.clock.now()
        return self.engine.withLock { $0.isKnownPlace(address, username: username, now: now) }
    }

    /// The normalised form of a username, as the engine keys it.
    public func normalize(_ username: String) -> String {
        GuardEngine.normalize(username, defaultDomain: self.policy.credentials.defaultDomain)
    }

    private func publish(_ decision: Decision) {
        for ban in decision.bans { self.sink.record(.ban(ban)) }
        for alert in decision.alerts { self.sink.record(.alert(alert)) }
    }
}
