// GuardStore: the guard's durable state. What is kept (bans, the attempts that rebuild the
// counting windows, alerts) and the contract every store keeps: a batch is written whole or
// not at all, loading gives back what a restarted guard needs, and nothing stored is ever a
// password, an AUTH payload or a password hash.

import GuardCore

/// What a guard needs back after a restart.
public struct StoredState: Sendable {
    /// Bans in force at load time.
    public var bans: [Ban]
    /// Every ban since the offence memory began (for escalation), in force or not.
    public var banHistory: [Ban]
    /// Settled attempts since the given time, oldest first (they rebuild the counts and the
    /// known places).
    public var attempts: [AuthAttempt]

    public init(bans: [Ban], banHistory: [Ban], attempts: [AuthAttempt]) {
        self.bans = bans
        self.banHistory = banHistory
        self.attempts = attempts
    }
}

public protocol StateStore: Sendable {
    /// Bans in force at `now`, bans since `bansSince`, settled attempts since `since`, and
    /// before that successes since `successesSince` (they make the known places).
    func load(now: Timestamp, since: Timestamp, successesSince: Timestamp, bansSince: Timestamp) async throws -> StoredState
    /// Writes events in one transaction.
    func write(_ events: [GuardEvent]) async throws
    /// Deletes attempts and alerts older than `before`, and bans that ended before it.
    func prune(before: Timestamp) async throws
    /// Creates or updates the schema; the versions before and after.
    func migrate() async throws -> (before: Int, after: Int)
    /// Schema version and what is kept, changing nothing (`smtpguard db status`).
    func status(now: Timestamp) async throws -> StoreStatus
    func close() async

    /// Trusted networks added by an operator (the admin API), oldest first. Those of the
    /// configuration file are not stored: the file says them.
    func trustedNetworks() async throws -> [TrustedNetwork]
    /// Adds a trusted network, or replaces its comment when it is there already.
    func addTrustedNetwork(_ entry: TrustedNetwork) async throws
    /// Removes a trusted network; false when it was not there.
    func removeTrustedNetwork(_ network: IPNetwork) async throws -> Bool
    /// The newest alerts, newest first (the admin API's history across restarts).
    func recentAlerts(limit: Int) async throws -> [Alert]
}

/// What `smtpguard db status` shows.
public struct StoreStatus: Sendable {
    public var schemaVersion: Int
    public var knownVersion: Int
    public var journalMode: String
    public var activeBans: Int
    public var attempts: Int
    public var alerts: Int
    public var oldestAttempt: Timestamp?
    public var newestAttempt: Timestamp?

    public init(
        schemaVersion: Int, knownVersion: Int, journalMode: String, activeBans: Int, attempts: Int, alerts: Int, oldestAttempt: Timestamp?,
        newestAttempt: Timestamp?
    ) {
        self.schemaVersion = schemaVersion
        self.knownVersion = knownVersion
        self.journalMode = journalMode
        self.activeBans = activeBans
        self.attempts = attempts
        self.alerts = alerts
        self.oldestAttempt = oldestAttempt
        self.newestAttempt = newestAttempt
    }
}
