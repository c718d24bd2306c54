// What the cluster store writes: a batch of events in one transaction (attempts in
// multi-row inserts of 2,000, bans and lifts each with its notification to the other guards,
// alerts), and the transaction and notification helpers the other writes share. Every value
// goes in as a bind or a typed interpolation, never as SQL text; no password or AUTH payload
// is ever among them (GuardEvent holds none).

import GuardCore
import Logging
import PostgresNIO

extension PostgresStateStore {
    public func write(_ events: [GuardEvent]) async throws {
        guard !events.isEmpty else { return }
        try await self.use("writing", code: .write) { connection in
            try await self.transaction(on: connection) { try await self.write(events, on: connection) }
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
    func transaction<T>(on connection: PostgresConnection, _ body: () async throws -> T) async throws -> T {
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
    func notify(_ message: ClusterMessage, on connection: PostgresConnection) async throws {
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
}
