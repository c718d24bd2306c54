// The embedded store: one SQLite file in WAL mode, created and migrated on first use. Every
// call runs on NIO's thread pool (sqlite-nio), never on an event loop.

import GuardCore
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO

public final class SQLiteStateStore: StateStore {
    public let path: String
    private let connection: SQLiteConnection

    /// The schema, one migration per version; `PRAGMA user_version` says how far a file is.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE bans (
              scope TEXT NOT NULL, key TEXT NOT NULL, reason TEXT NOT NULL,
              since_ms INTEGER NOT NULL, until_ms INTEGER NOT NULL, offense INTEGER NOT NULL,
              exempt_known_places INTEGER NOT NULL, lifted_ms INTEGER,
              PRIMARY KEY (scope, key, since_ms))
            """,
            "CREATE INDEX bans_until ON bans (until_ms)",
            """
            CREATE TABLE attempts (
              time_ms INTEGER NOT NULL, client TEXT NOT NULL, client_port INTEGER, username TEXT NOT NULL,
              mechanism TEXT NOT NULL, tls INTEGER NOT NULL, tls_version TEXT, outcome TEXT NOT NULL,
              source TEXT NOT NULL, default_credential INTEGER NOT NULL, reply INTEGER NOT NULL,
              decision TEXT NOT NULL, reasons TEXT NOT NULL, session TEXT NOT NULL)
            """,
            "CREATE INDEX attempts_time ON attempts (time_ms)",
            """
            CREATE TABLE alerts (
              time_ms INTEGER NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL, username TEXT,
              client TEXT, message TEXT NOT NULL)
            """,
            "CREATE INDEX alerts_time ON alerts (time_ms)",
        ],
        [
            "CREATE TABLE trusted_networks (network TEXT PRIMARY KEY, comment TEXT NOT NULL, added_ms INTEGER NOT NULL)"
        ],
    ]

    private init(path: String, connection: SQLiteConnection) {
        self.path = path
        self.connection = connection
    }

    /// Opens (creating and migrating) the state file. A file that is not an SQLite database,
    /// is damaged, cannot be written, or comes from a newer version is an error naming it.
    /// - Parameter migrate: false opens an existing file as it is (for `db status`).
    public static func open(path: String, migrate: Bool = true, logger: Logger = Logger(label: "smtpguard.store")) async throws -> SQLiteStateStore {
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw GuardStoreError(.open, "state file \(path): cannot be opened (\(error))", underlying: error)
        }
        let store = SQLiteStateStore(path: path, connection: connection)
        do {
            // Guards sharing a file and starting together: switching to WAL and the first
            // migration take the file for themselves, and SQLite may answer "database is
            // locked" at once rather than wait; try again, for 10 s at most.
            var tries = 0
            while true {
                do {
                    try await store.prepare()
                    if migrate { _ = try await store.migrate() }
                    break
                } catch where tries < 100 && Self.isLocked(error) {
                    tries += 1
                    try await Task.sleep(for: .milliseconds(Int.random(in: 50...150)))
                }
            }
        } catch let error as GuardStoreError {
            await store.close()
            throw error
        } catch {
            await store.close()
            throw GuardStoreError(.open, "state file \(path): \(Self.explain(error))", underlying: error)
        }
        return store
    }

    static func isLocked(_ error: any Error) -> Bool {
        let text = "\(error)"
        return text.contains("database is locked")
    }

    static func explain(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("not a database") || text.contains("malformed") || text.contains("corrupt") {
            return "not an SQLite database, or damaged (\(text)); move it away to start with empty state, or restore a backup"
        }
        if text.contains("readonly") || text.contains("read-only") || text.contains("unable to open") {
            return "cannot be written (\(text)); check its owner and permissions and those of its folder"
        }
        return text
    }

    private func prepare() async throws {
        // Another guard may have the file locked (units starting together): wait for it.
        _ = try await self.connection.query("PRAGMA busy_timeout = 5000", [])
        // journal_mode answers with a row; WAL lets readers go on while the writer writes.
        _ = try await self.connection.query("PRAGMA journal_mode = WAL", [])
        _ = try await self.connection.query("PRAGMA synchronous = NORMAL", [])
        let check = try await self.connection.query("PRAGMA quick_check", [])
        if let result = check.first?.column("quick_check")?.string, result != "ok" {
            throw GuardStoreError(.damaged, "state file \(self.path): damaged (\(result)); move it away to start with empty state, or restore a backup")
        }
        let version = try await self.schemaVersion
        guard version <= Self.migrations.count else {
            throw GuardStoreError(.schemaTooNew, "state file \(self.path): schema version \(version) is newer than this smtpguard knows (\(Self.migrations.count))")
        }
    }

    /// Brings the schema up to date, one transaction per version.
    public func migrate() async throws -> (before: Int, after: Int) {
        try await self.migrate(upTo: Self.migrations.count)
    }

    /// Opens a file migrated only up to `version` (tests of upgrades).
    static func openAtVersion(path: String, version: Int) async throws -> SQLiteStateStore {
        let store = try await self.open(path: path, migrate: false)
        _ = try await store.migrate(upTo: version)
        return store
    }

    /// Each step reads the version again inside its write transaction: guards that share a
    /// file and start together migrate it one after the other, never one step twice.
    func migrate(upTo target: Int) async throws -> (before: Int, after: Int) {
        let version = try await self.schemaVersion
        for (index, statements) in Self.migrations.enumerated() where index >= version && index < target {
            _ = try await self.connection.query("BEGIN IMMEDIATE", [])
            do {
                if try await self.schemaVersion > index {
                    _ = try await self.connection.query("COMMIT", [])
                    continue
                }
                for statement in statements { _ = try await self.connection.query(statement, []) }
                _ = try await self.connection.query("PRAGMA user_version = \(index + 1)", [])
                _ = try await self.connection.query("COMMIT", [])
            } catch {
                _ = try? await self.connection.query("ROLLBACK", [])
                throw error
            }
        }
        return (version, max(version, target))
    }

    public var schemaVersion: Int {
        get async throws { try await self.connection.query("PRAGMA user_version", []).first?.column("user_version")?.integer ?? 0 }
    }

    public func load(now: Timestamp, since: Timestamp, successesSince: Timestamp, bansSince: Timestamp) async throws -> StoredState {
        var bans: [Ban] = []
        var history: [Ban] = []
        for row in try await self.connection.query(
            "SELECT scope, key, reason, since_ms, until_ms, offense, exempt_known_places, lifted_ms FROM bans WHERE since_ms >= ?1 OR until_ms > ?2 ORDER BY since_ms",
            [.integer(bansSince.milliseconds), .integer(now.milliseconds)])
        {
            guard let scope = row.column("scope")?.string, let key = row.column("key")?.string, let reason = row.column("reason")?.string,
                let since = row.column("since_ms")?.integer, let until = row.column("until_ms")?.integer,
                let offense = row.column("offense")?.integer,
                let ban = Ban(
                    scope: scope, key: key, reason: reason, since: since, until: until, offense: offense,
                    exempt: row.column("exempt_known_places")?.integer == 1)
            else { continue }
            history.append(ban)
            if ban.until > now, row.column("lifted_ms")?.integer == nil { bans.append(ban) }
        }
        var attempts: [AuthAttempt] = []
        for row in try await self.connection.query(
            """
            SELECT time_ms, client, client_port, username, mechanism, tls, tls_version, outcome, source, default_credential FROM attempts
            WHERE time_ms >= ?1 OR (time_ms >= ?2 AND outcome = 'success') ORDER BY time_ms
            """,
            [.integer(since.milliseconds), .integer(min(successesSince, since).milliseconds)])
        {
            guard let time = row.column("time_ms")?.integer, let client = row.column("client")?.string,
                let username = row.column("username")?.string, let outcome = row.column("outcome")?.string,
                let source = row.column("source")?.string,
                let attempt = AuthAttempt(
                    row: (
                        time, client, row.column("client_port")?.integer, username, row.column("mechanism")?.string ?? "",
                        row.column("tls")?.integer == 1, row.column("tls_version")?.string, outcome, source,
                        row.column("default_credential")?.integer == 1
                    ))
            else { continue }
            attempts.append(attempt)
        }
        return StoredState(bans: bans, banHistory: history, attempts: attempts)
    }

    /// Attempts go in as multi-row INSERTs (one statement per 2,000 rows: every statement is
    /// a trip to the thread pool); the rare bans, unbans and alerts one by one, in order.
    public func write(_ events: [GuardEvent]) async throws {
        guard !events.isEmpty else { return }
        _ = try await self.connection.query("BEGIN IMMEDIATE", [])
        do {
            var rows: [SQLiteData] = []
            var count = 0
            for event in events {
                if case .attempt(let record) = event {
                    guard record.attempt.outcome != .pending else { continue }
                    rows += Self.attemptRow(record)
                    count += 1
                    if count == Self.rowsPerInsert {
                        try await self.insertAttempts(rows, count: count)
                        rows.removeAll(keepingCapacity: true)
                        count = 0
                    }
                } else {
                    try await self.write(event)
                }
            }
            if count > 0 { try await self.insertAttempts(rows, count: count) }
            _ = try await self.connection.query("COMMIT", [])
        } catch {
            _ = try? await self.connection.query("ROLLBACK", [])
            throw GuardStoreError(.write, "state file \(self.path): write failed: \(Self.explain(error))", underlying: error)
        }
    }

    static let attemptColumns = 14
    static let rowsPerInsert = 2000

    static func attemptRow(_ record: AttemptRecord) -> [SQLiteData] {
        let attempt = record.attempt
        return [
            .integer(attempt.time.milliseconds), .text(attempt.client.description), attempt.clientPort.map { .integer(Int($0)) } ?? .null,
            .text(attempt.username), .text(attempt.mechanism.rawValue), .integer(attempt.tls ? 1 : 0),
            attempt.tlsVersion.map { .text($0) } ?? .null, .text(attempt.outcome.rawValue), .text(attempt.source.rawValue),
            .integer(attempt.credential.isDefaultPassword ? 1 : 0), .integer(record.replyCode), .text(record.decision.verdict.rawValue),
            .text(record.decision.reasons.map(\.rawValue).joined(separator: ",")), .text(record.session),
        ]
    }

    private func insertAttempts(_ values: [SQLiteData], count: Int) async throws {
        let row = "(" + Array(repeating: "?", count: Self.attemptColumns).joined(separator: ",") + ")"
        let sql = "INSERT INTO attempts VALUES " + Array(repeating: row, count: count).joined(separator: ",")
        _ = try await self.connection.query(sql, values)
    }

    private func write(_ event: GuardEvent) async throws {
        switch event {
        case .attempt:
            return  // written in batches by write(_:)
        case .sending:
            return  // not kept in the state
        case .ban(let ban):
            _ = try await self.connection.query(
                "INSERT OR REPLACE INTO bans VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
                [
                    .text(ban.key.scope.rawValue), .text(ban.key.storeText), .text(ban.reason.rawValue), .integer(ban.since.milliseconds),
                    .integer(ban.until.milliseconds), .integer(ban.offense), .integer(ban.exemptKnownPlaces ? 1 : 0),
                ])
        case .unban(let ban, let time, let lifted):
            guard lifted else { return }  // an expiry needs no write: until_ms says it
            _ = try await self.connection.query(
                "UPDATE bans SET lifted_ms = ?1 WHERE scope = ?2 AND key = ?3 AND since_ms = ?4",
                [.integer(time.milliseconds), .text(ban.key.scope.rawValue), .text(ban.key.storeText), .integer(ban.since.milliseconds)])
        case .alert(let alert):
            _ = try await self.connection.query(
                "INSERT INTO alerts VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                [
                    .integer(alert.time.milliseconds), .text(alert.kind.rawValue), .text(alert.severity.rawValue),
                    .text(alert.username), alert.client.map { .text($0.description) } ?? .null, .text(alert.message),
                ])
        }
    }

    public func status(now: Timestamp) async throws -> StoreStatus {
        func number(_ sql: String, _ binds: [SQLiteData] = []) async throws -> Int {
            try await self.connection.query(sql, binds).first?.columns.first?.data.integer ?? 0
        }
        let version = try await self.schemaVersion
        let journal = try await self.connection.query("PRAGMA journal_mode", []).first?.columns.first?.data.string ?? "?"
        guard version >= 1 else {
            return StoreStatus(
                schemaVersion: version, knownVersion: Self.migrations.count, journalMode: journal, activeBans: 0, attempts: 0, alerts: 0,
                oldestAttempt: nil, newestAttempt: nil)
        }
        let oldest = try await self.connection.query("SELECT MIN(time_ms) AS t FROM attempts", []).first?.column("t")?.integer
        let newest = try await self.connection.query("SELECT MAX(time_ms) AS t FROM attempts", []).first?.column("t")?.integer
        return StoreStatus(
            schemaVersion: version, knownVersion: Self.migrations.count, journalMode: journal,
            activeBans: try await number("SELECT COUNT(*) FROM bans WHERE lifted_ms IS NULL AND until_ms > ?1", [.integer(now.milliseconds)]),
            attempts: try await number("SELECT COUNT(*) FROM attempts"), alerts: try await number("SELECT COUNT(*) FROM alerts"),
            oldestAttempt: oldest.map { Timestamp(milliseconds: $0) }, newestAttempt: newest.map { Timestamp(milliseconds: $0) })
    }

    public func prune(before: Timestamp) async throws {
        let cut = SQLiteData.integer(before.milliseconds)
        _ = try await self.connection.query("DELETE FROM attempts WHERE time_ms < ?1", [cut])
        _ = try await self.connection.query("DELETE FROM alerts WHERE time_ms < ?1", [cut])
        _ = try await self.connection.query("DELETE FROM bans WHERE until_ms < ?1", [cut])
    }

    public func close() async {
        try? await self.connection.close()
    }

    public func trustedNetworks() async throws -> [TrustedNetwork] {
        do {
            return try await self.connection.query("SELECT network, comment, added_ms FROM trusted_networks ORDER BY added_ms, network", []).compactMap { row in
                guard let text = row.column("network")?.string, let network = IPNetwork(text), let added = row.column("added_ms")?.integer else { return nil }
                return TrustedNetwork(network: network, comment: row.column("comment")?.string ?? "", added: Timestamp(milliseconds: added))
            }
        } catch {
            throw GuardStoreError(.read, "state file \(self.path): cannot read the trusted networks: \(Self.explain(error))", underlying: error)
        }
    }

    public func addTrustedNetwork(_ entry: TrustedNetwork) async throws {
        do {
            _ = try await self.connection.query(
                "INSERT INTO trusted_networks VALUES (?1, ?2, ?3) ON CONFLICT (network) DO UPDATE SET comment = excluded.comment",
                [.text(entry.network.description), .text(entry.comment), .integer(entry.added.milliseconds)])
        } catch {
            throw GuardStoreError(.write, "state file \(self.path): cannot add a trusted network: \(Self.explain(error))", underlying: error)
        }
    }

    public func removeTrustedNetwork(_ network: IPNetwork) async throws -> Bool {
        do {
            let found = try await self.connection.query("SELECT 1 AS one FROM trusted_networks WHERE network = ?1", [.text(network.description)])
            guard !found.isEmpty else { return false }
            _ = try await self.connection.query("DELETE FROM trusted_networks WHERE network = ?1", [.text(network.description)])
            return true
        } catch {
            throw GuardStoreError(.write, "state file \(self.path): cannot remove a trusted network: \(Self.explain(error))", underlying: error)
        }
    }

    public func recentAlerts(limit: Int) async throws -> [Alert] {
        do {
            return try await self.connection.query(
                "SELECT time_ms, kind, severity, username, client, message FROM alerts ORDER BY time_ms DESC LIMIT ?1", [.integer(limit)]
            ).compactMap { row in
                guard let time = row.column("time_ms")?.integer, let kind = row.column("kind")?.string, let severity = row.column("severity")?.string,
                    let message = row.column("message")?.string
                else { return nil }
                return Alert(
                    time: time, kind: kind, severity: severity, username: row.column("username")?.string, client: row.column("client")?.string,
                    message: message)
            }
        } catch {
            throw GuardStoreError(.read, "state file \(self.path): cannot read the alerts: \(Self.explain(error))", underlying: error)
        }
    }
}
