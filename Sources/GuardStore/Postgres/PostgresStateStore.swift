// The cluster store: the same tables in PostgreSQL (postgres-nio), shared by several guards.
// Each row says which guard wrote it; every ban written, and every change to the trusted
// networks, also goes out as a notification on the channel `smtpguard_bans`, so that the
// other guards act on it at once (ClusterSync).
// The connection is opened again after a failure on the next use, by one caller at a time
// (SerialGate); what could not be written stays queued in the StoreWriter.

import Foundation
import GuardCore
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

public final class PostgresStateStore: StateStore {
    public let url: String
    public let guardID: String
    /// The longest a connect, or a wait for one query, may take (`state.timeout`).
    public let timeout: Duration
    let configuration: PostgresConnection.Configuration
    let logger: Logger
    private let connection = Mutex<PostgresConnection?>(nil)
    private let gate = SerialGate()
    private let nextID = Atomic<Int>(1)

    static let notifyChannel = "smtpguard_bans"

    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE bans (
              scope TEXT NOT NULL, key TEXT NOT NULL, reason TEXT NOT NULL, since_ms BIGINT NOT NULL, until_ms BIGINT NOT NULL,
              offense INTEGER NOT NULL, exempt_known_places BOOLEAN NOT NULL, lifted_ms BIGINT, guard_id TEXT NOT NULL,
              PRIMARY KEY (scope, key, since_ms))
            """,
            "CREATE INDEX bans_until ON bans (until_ms)",
            """
            CREATE TABLE attempts (
              id BIGSERIAL PRIMARY KEY, time_ms BIGINT NOT NULL, client TEXT NOT NULL, client_port INTEGER, username TEXT NOT NULL,
              mechanism TEXT NOT NULL, tls BOOLEAN NOT NULL, tls_version TEXT, outcome TEXT NOT NULL, source TEXT NOT NULL,
              default_credential BOOLEAN NOT NULL, reply INTEGER NOT NULL, decision TEXT NOT NULL, reasons TEXT NOT NULL,
              session TEXT NOT NULL, guard_id TEXT NOT NULL)
            """,
            "CREATE INDEX attempts_time ON attempts (time_ms)",
            """
            CREATE TABLE alerts (
              time_ms BIGINT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL, username TEXT, client TEXT, message TEXT NOT NULL,
              guard_id TEXT NOT NULL)
            """,
            "CREATE INDEX alerts_time ON alerts (time_ms)",
        ],
        [
            "CREATE TABLE trusted_networks (network TEXT PRIMARY KEY, comment TEXT NOT NULL, added_ms BIGINT NOT NULL, guard_id TEXT NOT NULL)"
        ],
    ]

    /// Parses `postgres://user[:password]@host[:port]/database` (a password may also come
    /// from PGPASSWORD); never logs the password.
    public init(url: String, guardID: String, timeout: Duration = .seconds(10), logger: Logger = Logger(label: "smtpguard.store")) throws {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
            let host = components.host, !host.isEmpty, let user = components.user, !user.isEmpty
        else { throw StoreError("state.url: expected postgres://user[:password]@host[:port]/database") }
        let database = String(components.path.dropFirst())
        let password = components.password ?? ProcessInfo.processInfo.environment["PGPASSWORD"]
        var configuration = PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: password, database: database.isEmpty ? nil : database, tls: .disable)
        configuration.options.connectTimeout = .nanoseconds(timeout.nanosecondsClamped)
        self.configuration = configuration
        self.timeout = timeout
        self.url = Self.redacted(components)
        self.guardID = guardID
        self.logger = logger
    }

    static func redacted(_ components: URLComponents) -> String {
        var copy = components
        if copy.password != nil { copy.password = "***" }
        return copy.string ?? "postgres://…"
    }

    /// The store's connection, opened now if there is none, for one caller at a time. A use
    /// in which no query finishes for `timeout` (a server that stopped answering, a half-open
    /// connection) has its connection closed, which fails the query, so that it cannot hold
    /// up every other caller. A long write that keeps finishing queries goes on.
    func use<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await self.gate.run {
            let existing = self.connection.withLock { $0 }
            let connection: PostgresConnection
            if let existing, !existing.isClosed {
                connection = existing
            } else {
                connection = try await self.connect()
                self.connection.withLock { $0 = connection }
            }
            let watch = UseWatch()
            return try await withThrowingTaskGroup(of: Void.self) { watchdog in
                watchdog.addTask { [timeout = self.timeout] in
                    try await watch.expire(after: timeout)
                    try? await connection.close()
                }
                defer { watchdog.cancelAll() }
                do {
                    return try await UseWatch.$current.withValue(watch) { try await body(connection) }
                } catch {
                    if connection.isClosed { self.connection.withLock { $0 = nil } }
                    if watch.hasExpired {
                        throw StoreError("\(self.url): no answer within \(self.timeout.compactText) (state.timeout); the connection was closed and is opened again on the next use")
                    }
                    throw error
                }
            }
        }
    }

    /// A new connection of its own (the notification listener keeps one).
    public func connect() async throws -> PostgresConnection {
        do {
            return try await PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.any(), configuration: self.configuration,
                id: self.nextID.wrappingAdd(1, ordering: .relaxed).oldValue, logger: self.logger
            ).get()
        } catch let error as PSQLError where error.code == .connectionError && Self.isConnectTimeout(error.underlying) {
            throw StoreError("\(self.url): cannot connect: no answer within \(self.timeout.compactText) (state.timeout)")
        } catch {
            throw StoreError("\(self.url): cannot connect (\(String(reflecting: error).prefix(300)))")
        }
    }

    static func isConnectTimeout(_ error: (any Error)?) -> Bool {
        if case .connectTimeout = error as? ChannelError { return true }
        return false
    }

    /// Creates or updates the schema (one transaction per version, under an advisory lock so
    /// that two guards starting together do not race).
    public func migrate() async throws -> (before: Int, after: Int) {
        try await self.use { connection in
            _ = try await connection.query("SELECT pg_advisory_lock(20251123)", logger: self.logger)
            do {
                let result = try await self.migrate(on: connection)
                _ = try await connection.query("SELECT pg_advisory_unlock(20251123)", logger: self.logger)
                return result
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(20251123)", logger: self.logger)
                throw error
            }
        }
    }

    private func migrate(on connection: PostgresConnection) async throws -> (before: Int, after: Int) {
        do {
            _ = try await connection.query("CREATE TABLE IF NOT EXISTS smtpguard_schema (version INTEGER NOT NULL)", logger: self.logger)
            var version = 0
            for try await (value) in try await connection.query("SELECT version FROM smtpguard_schema", logger: self.logger).decode(Int.self) {
                version = value
            }
            let before = version
            guard version <= Self.migrations.count else {
                throw StoreError("\(self.url): schema version \(version) is newer than this smtpguard knows (\(Self.migrations.count))")
            }
            for (index, statements) in Self.migrations.enumerated() where index >= version {
                try await self.transaction(on: connection) {
                    for statement in statements { _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger) }
                    _ = try await connection.query("DELETE FROM smtpguard_schema", logger: self.logger)
                    _ = try await connection.query("INSERT INTO smtpguard_schema VALUES (\(index + 1))", logger: self.logger)
                }
                version = index + 1
            }
            return (before, version)
        }
    }

    /// Schema version and what is kept, without changing anything.
    public func status(now: Timestamp) async throws -> StoreStatus {
        try await self.use { connection in
            func number(_ query: PostgresQuery) async throws -> Int? {
                for try await value in try await connection.query(query, logger: self.logger).decode(Int?.self) { return value }
                return nil
            }
            var version = 0
            if try await number("SELECT count(*)::bigint FROM information_schema.tables WHERE table_name = 'smtpguard_schema'") == 1 {
                version = try await number("SELECT max(version)::bigint FROM smtpguard_schema") ?? 0
            }
            guard version >= 1 else {
                return StoreStatus(
                    schemaVersion: version, knownVersion: Self.migrations.count, journalMode: "postgresql", activeBans: 0, attempts: 0, alerts: 0,
                    oldestAttempt: nil, newestAttempt: nil)
            }
            return StoreStatus(
                schemaVersion: version, knownVersion: Self.migrations.count, journalMode: "postgresql",
                activeBans: try await number("SELECT count(*)::bigint FROM bans WHERE lifted_ms IS NULL AND until_ms > \(now.milliseconds)") ?? 0,
                attempts: try await number("SELECT count(*)::bigint FROM attempts") ?? 0,
                alerts: try await number("SELECT count(*)::bigint FROM alerts") ?? 0,
                oldestAttempt: try await number("SELECT min(time_ms) FROM attempts").map { Timestamp(milliseconds: $0) },
                newestAttempt: try await number("SELECT max(time_ms) FROM attempts").map { Timestamp(milliseconds: $0) })
        }
    }

    /// Bans lifted since `since` (a missed notification heals at the next reconciliation).
    public func liftedBans(since: Timestamp) async throws -> [BanKey] {
        try await self.use { connection in
            var keys: [BanKey] = []
            let rows = try await connection.query(
                "SELECT scope, key FROM bans WHERE lifted_ms >= \(since.milliseconds)", logger: self.logger)
            for try await (scope, key) in rows.decode((String, String).self) {
                if let scope = BanScope(rawValue: scope), let key = BanKey(scope: scope, text: key) { keys.append(key) }
            }
            return keys
        }
    }

    public func load(now: Timestamp, since: Timestamp, successesSince: Timestamp, bansSince: Timestamp) async throws -> StoredState {
        try await self.use { connection in
            var bans: [Ban] = []
            var history: [Ban] = []
            let banRows = try await connection.query(
                """
                SELECT scope, key, reason, since_ms, until_ms, offense, exempt_known_places, lifted_ms FROM bans
                WHERE since_ms >= \(bansSince.milliseconds) OR until_ms > \(now.milliseconds) ORDER BY since_ms
                """, logger: self.logger)
            for try await (scope, key, reason, since, until, offense, exempt, lifted) in banRows.decode(
                (String, String, String, Int, Int, Int, Bool, Int?).self)
            {
                guard let ban = Ban(scope: scope, key: key, reason: reason, since: since, until: until, offense: offense, exempt: exempt) else { continue }
                history.append(ban)
                if ban.until > now, lifted == nil { bans.append(ban) }
            }
            var attempts: [AuthAttempt] = []
            let attemptRows = try await connection.query(
                """
                SELECT time_ms, client, client_port, username, mechanism, tls, tls_version, outcome, source, default_credential FROM attempts
                WHERE time_ms >= \(since.milliseconds) OR (time_ms >= \(min(successesSince, since).milliseconds) AND outcome = 'success') ORDER BY time_ms, id
                """, logger: self.logger)
            for try await row in attemptRows.decode((Int, String, Int?, String, String, Bool, String?, String, String, Bool).self) {
                if let attempt = AuthAttempt(row: row) { attempts.append(attempt) }
            }
            return StoredState(bans: bans, banHistory: history, attempts: attempts)
        }
    }

    public func write(_ events: [GuardEvent]) async throws {
        guard !events.isEmpty else { return }
        try await self.use { connection in
            do {
                try await self.transaction(on: connection) { try await self.write(events, on: connection) }
            } catch {
                throw StoreError("\(self.url): write failed (\(String(reflecting: error).prefix(300)))")
            }
        }
    }

    private func write(_ events: [GuardEvent], on connection: PostgresConnection) async throws {
        var attempts: [AttemptRecord] = []
        for event in events {
            switch event {
            case .attempt(let record) where record.attempt.outcome != .pending:
                attempts.append(record)
                if attempts.count == 2000 {
                    try await self.insert(attempts, on: connection)
                    attempts.removeAll(keepingCapacity: true)
                }
            case .attempt, .sending:
                break
            case .ban(let ban):
                UseWatch.progressed()
                _ = try await connection.query(
                    """
                    INSERT INTO bans VALUES (\(ban.key.scope.rawValue), \(ban.key.storeText), \(ban.reason.rawValue),
                      \(ban.since.milliseconds), \(ban.until.milliseconds), \(ban.offense), \(ban.exemptKnownPlaces), NULL, \(self.guardID))
                    ON CONFLICT (scope, key, since_ms) DO NOTHING
                    """, logger: self.logger)
                try await self.notify(.ban(ban, guard: self.guardID), on: connection)
            case .unban(let ban, let time, let lifted):
                guard lifted else { continue }
                UseWatch.progressed()
                _ = try await connection.query(
                    """
                    UPDATE bans SET lifted_ms = \(time.milliseconds)
                    WHERE scope = \(ban.key.scope.rawValue) AND key = \(ban.key.storeText) AND since_ms = \(ban.since.milliseconds)
                    """, logger: self.logger)
                try await self.notify(.lift(ban.key, guard: self.guardID), on: connection)
            case .alert(let alert):
                UseWatch.progressed()
                _ = try await connection.query(
                    """
                    INSERT INTO alerts VALUES (\(alert.time.milliseconds), \(alert.kind.rawValue), \(alert.severity.rawValue),
                      \(alert.username), \(alert.client?.description), \(alert.message), \(self.guardID))
                    """, logger: self.logger)
            }
        }
        if !attempts.isEmpty { try await self.insert(attempts, on: connection) }
    }

    /// `body` in one transaction: committed when it returns, rolled back when it throws.
    private func transaction<T>(on connection: PostgresConnection, _ body: () async throws -> T) async throws -> T {
        _ = try await connection.query("BEGIN", logger: self.logger)
        do {
            let result = try await body()
            _ = try await connection.query("COMMIT", logger: self.logger)
            return result
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: self.logger)
            throw error
        }
    }

    /// Word to the other guards (ClusterSync); inside a transaction it goes out at COMMIT.
    private func notify(_ message: ClusterMessage, on connection: PostgresConnection) async throws {
        _ = try await connection.query("SELECT pg_notify(\(Self.notifyChannel), \(message.text))", logger: self.logger)
    }

    private func insert(_ records: [AttemptRecord], on connection: PostgresConnection) async throws {
        var bindings = PostgresBindings(capacity: records.count * 15)
        var rows: [String] = []
        rows.reserveCapacity(records.count)
        var n = 0
        for record in records {
            let attempt = record.attempt
            bindings.append(attempt.time.milliseconds)
            bindings.append(attempt.client.description)
            bindings.append(attempt.clientPort.map { Int($0) })
            bindings.append(attempt.username)
            bindings.append(attempt.mechanism.rawValue)
            bindings.append(attempt.tls)
            bindings.append(attempt.tlsVersion)
            bindings.append(attempt.outcome.rawValue)
            bindings.append(attempt.source.rawValue)
            bindings.append(attempt.credential.isDefaultPassword)
            bindings.append(record.replyCode)
            bindings.append(record.decision.verdict.rawValue)
            bindings.append(record.decision.reasons.map(\.rawValue).joined(separator: ","))
            bindings.append(record.session)
            bindings.append(self.guardID)
            rows.append("(" + (1...15).map { "$\(n + $0)" }.joined(separator: ",") + ")")
            n += 15
        }
        let sql = """
            INSERT INTO attempts (time_ms, client, client_port, username, mechanism, tls, tls_version, outcome, source,
              default_credential, reply, decision, reasons, session, guard_id) VALUES
            """ + rows.joined(separator: ",")
        UseWatch.progressed()
        _ = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: self.logger)
    }

    /// Settled attempts written by other guards after row `after`, and the last row id seen.
    public func remoteAttempts(after: Int) async throws -> (attempts: [AuthAttempt], last: Int) {
        try await self.use { connection in
            var attempts: [AuthAttempt] = []
            var last = after
            let rows = try await connection.query(
                """
                SELECT id, time_ms, client, client_port, username, mechanism, tls, tls_version, outcome, source, default_credential FROM attempts
                WHERE id > \(after) AND guard_id <> \(self.guardID) ORDER BY id LIMIT 10000
                """, logger: self.logger)
            for try await (id, time, client, port, username, mechanism, tls, version, outcome, source, isDefault) in rows.decode(
                (Int, Int, String, Int?, String, String, Bool, String?, String, String, Bool).self)
            {
                last = max(last, id)
                if let attempt = AuthAttempt(row: (time, client, port, username, mechanism, tls, version, outcome, source, isDefault)) {
                    attempts.append(attempt)
                }
            }
            return (attempts, last)
        }
    }

    /// The highest attempt row id now (where a guard starts following the others).
    public func lastAttemptID() async throws -> Int {
        try await self.use { connection in
            var last = 0
            for try await value in try await connection.query("SELECT COALESCE(MAX(id), 0) FROM attempts", logger: self.logger).decode(Int.self) {
                last = value
            }
            return last
        }
    }

    /// Bans in force now, for reconciliation.
    public func activeBans(now: Timestamp) async throws -> [Ban] {
        try await self.load(now: now, since: now, successesSince: now, bansSince: now).bans
    }

    public func prune(before: Timestamp) async throws {
        try await self.use { connection in
            _ = try await connection.query("DELETE FROM attempts WHERE time_ms < \(before.milliseconds)", logger: self.logger)
            _ = try await connection.query("DELETE FROM alerts WHERE time_ms < \(before.milliseconds)", logger: self.logger)
            _ = try await connection.query("DELETE FROM bans WHERE until_ms < \(before.milliseconds)", logger: self.logger)
        }
    }

    public func trustedNetworks() async throws -> [TrustedNetwork] {
        try await self.use { connection in
            var entries: [TrustedNetwork] = []
            let rows = try await connection.query("SELECT network, comment, added_ms FROM trusted_networks ORDER BY added_ms, network", logger: self.logger)
            for try await (text, comment, added) in rows.decode((String, String, Int).self) {
                if let network = IPNetwork(text) { entries.append(TrustedNetwork(network: network, comment: comment, added: Timestamp(milliseconds: added))) }
            }
            return entries
        }
    }

    public func addTrustedNetwork(_ entry: TrustedNetwork) async throws {
        _ = try await self.changeTrustedNetworks { connection in
            _ = try await connection.query(
                """
                INSERT INTO trusted_networks VALUES (\(entry.network.description), \(entry.comment), \(entry.added.milliseconds), \(self.guardID))
                ON CONFLICT (network) DO UPDATE SET comment = excluded.comment
                """, logger: self.logger)
            return true
        }
    }

    public func removeTrustedNetwork(_ network: IPNetwork) async throws -> Bool {
        try await self.changeTrustedNetworks { connection in
            var removed = false
            let rows = try await connection.query("DELETE FROM trusted_networks WHERE network = \(network.description) RETURNING network", logger: self.logger)
            for try await _ in rows.decode(String.self) { removed = true }
            return removed
        }
    }

    /// A change to the trusted networks and the word to the other guards that they changed
    /// (ClusterSync), in one transaction: both happen or neither (a notification goes out
    /// at COMMIT).
    private func changeTrustedNetworks(_ change: (PostgresConnection) async throws -> Bool) async throws -> Bool {
        try await self.use { connection in
            try await self.transaction(on: connection) {
                let changed = try await change(connection)
                if changed { try await self.notify(.trustedNetworks(guard: self.guardID), on: connection) }
                return changed
            }
        }
    }

    public func recentAlerts(limit: Int) async throws -> [Alert] {
        try await self.use { connection in
            var alerts: [Alert] = []
            let rows = try await connection.query(
                "SELECT time_ms, kind, severity, username, client, message FROM alerts ORDER BY time_ms DESC LIMIT \(limit)", logger: self.logger)
            for try await (time, kind, severity, username, client, message) in rows.decode((Int, String, String, String?, String?, String).self) {
                if let alert = Alert(time: time, kind: kind, severity: severity, username: username, client: client, message: message) { alerts.append(alert) }
            }
            return alerts
        }
    }

    public func close() async {
        let connection = await self.gate.run {
            self.connection.withLock { current -> PostgresConnection? in
                defer { current = nil }
                return current
            }
        }
        try? await connection?.close()
    }
}

/// What goes over the notification channel: a ban, a ban lifted, or the trusted networks
/// changed (the others read them again).
public enum ClusterMessage: Sendable, Equatable {
    case ban(Ban, guard: String)
    case lift(BanKey, guard: String)
    case trustedNetworks(guard: String)

    /// Fields separated by tabs (none of them can hold one).
    public var text: String {
        switch self {
        case .ban(let ban, let guardID):
            return ["ban", guardID, ban.key.scope.rawValue, ban.key.storeText, ban.reason.rawValue, "\(ban.since.milliseconds)",
                "\(ban.until.milliseconds)", "\(ban.offense)", ban.exemptKnownPlaces ? "1" : "0"].joined(separator: "\t")
        case .lift(let key, let guardID):
            return ["lift", guardID, key.scope.rawValue, key.storeText].joined(separator: "\t")
        case .trustedNetworks(let guardID):
            return ["trusted", guardID].joined(separator: "\t")
        }
    }

    public init?(text: String) {
        let fields = text.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard fields.count >= 2 else { return nil }
        switch fields[0] {
        case "ban":
            guard fields.count == 9, let since = Int(fields[5]), let until = Int(fields[6]), let offense = Int(fields[7]),
                let ban = Ban(scope: fields[2], key: fields[3], reason: fields[4], since: since, until: until, offense: offense, exempt: fields[8] == "1")
            else { return nil }
            self = .ban(ban, guard: fields[1])
        case "lift":
            guard fields.count == 4, let scope = BanScope(rawValue: fields[2]), let key = BanKey(scope: scope, text: fields[3]) else { return nil }
            self = .lift(key, guard: fields[1])
        case "trusted":
            guard fields.count == 2 else { return nil }
            self = .trustedNetworks(guard: fields[1])
        default:
            return nil
        }
    }

    public var guardID: String {
        switch self {
        case .ban(_, let id), .lift(_, let id), .trustedNetworks(let id): return id
        }
    }
}

/// How far one use of the connection has got: the queries a long write has finished (each
/// one gives the watchdog another `timeout`), and whether the watchdog closed it.
final class UseWatch: Sendable {
    @TaskLocal static var current: UseWatch?
    let finished = Atomic<Int>(0)
    private let expired = Atomic<Bool>(false)

    var hasExpired: Bool { self.expired.load(ordering: .relaxed) }

    /// A long write is about to send its next statement: the one before it finished.
    static func progressed() {
        Self.current?.finished.add(1, ordering: .relaxed)
    }

    /// Returns, marked expired, once a whole `timeout` has gone by with no query finished;
    /// throws when cancelled (the use ended first).
    func expire(after timeout: Duration) async throws {
        var seen = -1
        while self.finished.load(ordering: .relaxed) != seen {
            seen = self.finished.load(ordering: .relaxed)
            try await Task.sleep(for: timeout)
        }
        self.expired.store(true, ordering: .relaxed)
    }
}
