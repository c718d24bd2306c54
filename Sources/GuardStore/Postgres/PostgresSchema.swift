// The cluster store's tables, and how a database gets them: one transaction per schema
// version, under an advisory lock so that two guards starting together do not race; and the
// read-only look at the schema and what is kept (`smtpguard db status`).

import GuardCore
import PostgresNIO

extension PostgresStateStore {
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

    /// Creates or updates the schema (one transaction per version, under an advisory lock so
    /// that two guards starting together do not race).
    public func migrate() async throws -> (before: Int, after: Int) {
        try await self.use("updating the schema", code: .write) { connection in
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
        _ = try await connection.query("CREATE TABLE IF NOT EXISTS smtpguard_schema (version INTEGER NOT NULL)", logger: self.logger)
        var version = 0
        for try await (value) in try await connection.query("SELECT version FROM smtpguard_schema", logger: self.logger).decode(Int.self) {
            version = value
        }
        let before = version
        guard version <= Self.migrations.count else {
            throw GuardStoreError(.schemaTooNew, "\(self.url): schema version \(version) is newer than this smtpguard knows (\(Self.migrations.count))")
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

    /// Schema version and what is kept, without changing anything.
    public func status(now: Timestamp) async throws -> StoreStatus {
        try await self.use("reading the status", code: .read) { connection in
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
}
