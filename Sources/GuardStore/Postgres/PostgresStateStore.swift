// The cluster store: the same tables in PostgreSQL (postgres-nio), shared by several guards.
// Each row says which guard wrote it; every ban written, and every change to the trusted
// networks, also goes out as a notification on the channel `smtpguard_bans`, so that the
// other guards act on it at once (ClusterSync). Talks to the database of `state.url` only;
// trusts its rows as far as they parse.
// The connection is opened again after a failure on the next use, by one caller at a time
// (SerialGate); each use is bounded by `state.timeout` (UseWatch), and what could not be
// written stays queued in the StoreWriter. The notification listener keeps a connection of
// its own.

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

    /// The channel every guard listens on (ClusterSync).
    public static let notifyChannel = "smtpguard_bans"

    /// Parses `postgres://user[:password]@host[:port]/database` (a password may also come
    /// from PGPASSWORD); never logs the password.
    public init(url: String, guardID: String, timeout: Duration = .seconds(10), logger: Logger = Logger(label: "smtpguard.store")) throws {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
            let host = components.host, !host.isEmpty, let user = components.user, !user.isEmpty
        else { throw GuardStoreError(.invalidConfiguration, "state.url: expected postgres://user[:password]@host[:port]/database") }
        let database = String(components.path.dropFirst()).nilIfEmpty
        let password = components.password ?? ProcessInfo.processInfo.environment["PGPASSWORD"]
        let port = components.port ?? 5432
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: .disable)
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

    /// Runs `body`, in which every use of the store happens. (A PostgresClient pool would
    /// run beside it here; the store keeps its one connection for now, see README.)
    public func running<T>(_ body: () async throws -> T) async throws -> T {
        try await body()
    }

    /// The store's connection, opened now if there is none, for one caller at a time
    /// (SerialGate). A use in which no query finishes for `timeout` (a server that stopped
    /// answering, a half-open connection) has its connection closed, which fails the query,
    /// so that it cannot hold up every other caller; a long write that keeps finishing
    /// queries goes on. A failure is a GuardStoreError: `.timeout`, `.connect`, or `code`
    /// saying `what` was being done.
    func use<T: Sendable>(
        _ what: String, code: GuardStoreError.Code, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        do {
            return try await self.gate.run {
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
                            throw GuardStoreError(
                                .timeout,
                                "\(self.url): no answer within \(self.timeout.compactText) (state.timeout); the connection was closed and is opened again on the next use",
                                underlying: error)
                        }
                        throw error
                    }
                }
            }
        } catch let error as GuardStoreError {
            throw error
        } catch {
            throw GuardStoreError(code, "\(self.url): \(what) failed (\(Self.cause(error)))", underlying: error)
        }
    }

    /// A failure in words that hold no query and no secret: postgres-nio's code, what the
    /// server said, or the network's error.
    static func cause(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let server = error.serverInfo {
            return "the server said \(server[.sqlState] ?? "?"): \(server[.message] ?? "")"
        }
        if let inner = error.underlying as? PSQLError { return "\(error.code): \(inner.code)" }
        if let underlying = error.underlying { return "\(error.code): \(underlying)" }
        return "\(error.code)"
    }

    /// A new connection: the store's, or one of its own for the notification listener.
    func connect() async throws -> PostgresConnection {
        do {
            return try await PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.any(), configuration: self.configuration,
                id: self.nextID.wrappingAdd(1, ordering: .relaxed).oldValue, logger: self.logger
            ).get()
        } catch let error as PSQLError where error.code == .connectionError && Self.isConnectTimeout(error.underlying) {
            throw GuardStoreError(.timeout, "\(self.url): cannot connect: no answer within \(self.timeout.compactText) (state.timeout)", underlying: error)
        } catch {
            throw GuardStoreError(.connect, "\(self.url): cannot connect (\(Self.cause(error)))", underlying: error)
        }
    }

    static func isConnectTimeout(_ error: (any Error)?) -> Bool {
        if case .connectTimeout = error as? ChannelError { return true }
        return false
    }

    /// Bans lifted since `since` (a missed notification heals at the next reconciliation).
    public func liftedBans(since: Timestamp) async throws -> [BanKey] {
        try await self.use("reading the lifted bans", code: .read) { connection in
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
        try await self.use("reading the state", code: .read) { connection in
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

    /// Settled attempts written by other guards after row `after`, and the last row id seen.
    public func remoteAttempts(after: Int) async throws -> (attempts: [AuthAttempt], last: Int) {
        try await self.use("reading the other guards' attempts", code: .read) { connection in
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
        try await self.use("reading the attempts", code: .read) { connection in
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
        try await self.use("pruning", code: .write) { connection in
            _ = try await connection.query("DELETE FROM attempts WHERE time_ms < \(before.milliseconds)", logger: self.logger)
            _ = try await connection.query("DELETE FROM alerts WHERE time_ms < \(before.milliseconds)", logger: self.logger)
            _ = try await connection.query("DELETE FROM bans WHERE until_ms < \(before.milliseconds)", logger: self.logger)
        }
    }

    public func trustedNetworks() async throws -> [TrustedNetwork] {
        try await self.use("reading the trusted networks", code: .read) { connection in
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
    private func changeTrustedNetworks(_ change: @escaping @Sendable (PostgresConnection) async throws -> Bool) async throws -> Bool {
        try await self.use("changing the trusted networks", code: .write) { connection in
            try await self.transaction(on: connection) {
                let changed = try await change(connection)
                if changed { try await self.notify(.trustedNetworks(guard: self.guardID), on: connection) }
                return changed
            }
        }
    }

    public func recentAlerts(limit: Int) async throws -> [Alert] {
        try await self.use("reading the alerts", code: .read) { connection in
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

extension PostgresStateStore: ClusterStore {
    /// LISTEN on `notifyChannel`, on a connection of its own (a listening connection cannot
    /// run the store's queries), closed when the listen ends.
    public func listen(listening: () -> Void, received: (ClusterMessage) -> Void) async throws {
        let connection = try await self.connect()
        do {
            try await connection.listen(on: Self.notifyChannel) { notifications in
                listening()
                for try await notification in notifications {
                    if let message = ClusterMessage(text: notification.payload) { received(message) }
                }
            }
            try? await connection.close()
        } catch {
            try? await connection.close()
            if error is CancellationError { throw error }
            throw GuardStoreError(.read, "\(self.url): listening for the other guards failed (\(Self.cause(error)))", underlying: error)
        }
    }
}

extension String {
    fileprivate var nilIfEmpty: String? { self.isEmpty ? nil : self }
}
