// Keeps a guard in step with the other guards on the same PostgreSQL database:
// - bans and lifts arrive as notifications (LISTEN smtpguard_bans) and are enforced at once;
//   so does word that the trusted networks changed: they are read again at the next poll
//   (not in the listener, so that no read of the database holds up the next ban);
// - attempts the other guards saw are read every `poll` (by row id) and counted here, so a
//   guessing run spread over several guards is counted as one;
// - every `reconcile`, the bans in force, the recent lifts and the trusted networks are read
//   again, so a missed notification heals.
// A database that goes away is logged once; the guard goes on deciding from its own state and
// catches up when it is back.

import AdminServer
import GuardCore
import GuardStore
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import ServiceLifecycle
import Synchronization

struct ClusterSyncService: Service {
    let store: PostgresStateStore
    let guardEngine: Guard
    let trusted: TrustedNetworkBook
    let logger: Logger
    var poll: Duration = .milliseconds(200)
    var reconcile: Duration = .seconds(10)

    func run() async throws {
        let outage = OutageFlag()
        let trustedChanged = TrustedChange()
        try? await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.listen(outage: outage, trustedChanged: trustedChanged) }
                group.addTask { try await self.follow(outage: outage, trustedChanged: trustedChanged) }
                try await group.waitForAll()
            }
        }
    }

    /// Notifications, on a connection of their own; reconnects after a failure.
    private func listen(outage: OutageFlag, trustedChanged: TrustedChange) async throws {
        while !Task.isCancelled {
            do {
                let connection = try await self.store.connect()
                do {
                    try await connection.listen(on: "smtpguard_bans") { notifications in
                        self.recovered(outage)
                        for try await notification in notifications {
                            self.apply(notification.payload, trustedChanged: trustedChanged)
                        }
                    }
                    try? await connection.close()
                } catch {
                    try? await connection.close()
                    throw error
                }
            } catch {
                self.failed(outage, error)
            }
            try await Task.sleep(for: .seconds(1))
        }
    }

    private func apply(_ payload: String, trustedChanged: TrustedChange) {
        guard let message = ClusterMessage(text: payload), message.guardID != self.store.guardID else { return }
        switch message {
        case .ban(let ban, let origin):
            self.guardEngine.applyRemoteBan(ban)
            self.logger.info("cluster: ban from \(origin): \(ban.key.scope.rawValue) \(ban.key.description.logSafe) until \(ban.until.iso8601)")
        case .lift(let key, let origin):
            self.guardEngine.liftRemoteBan(key)
            self.logger.info("cluster: lifted on \(origin): \(key.scope.rawValue) \(key.description.logSafe)")
        case .trustedNetworks(let origin):
            trustedChanged.origin.withLock { $0 = origin }
        }
    }

    /// Reads the trusted networks again; logs what came and went.
    private func reloadTrustedNetworks(changedBy origin: String?) async throws {
        let (added, removed) = try await self.trusted.reload()
        let by = origin.map { " on \($0)" } ?? ""
        for network in added { self.logger.info("cluster: trusted network added\(by): \(network)") }
        for network in removed { self.logger.info("cluster: trusted network removed\(by): \(network)") }
    }

    /// The other guards' attempts, and the periodic reconciliation of bans.
    private func follow(outage: OutageFlag, trustedChanged: TrustedChange) async throws {
        var last: Int?
        var sinceReconcile = self.reconcile
        var lastReconcile = self.guardEngine.clock.now()
        while !Task.isCancelled {
            do {
                if last == nil { last = try await self.store.lastAttemptID() }
                let (attempts, newest) = try await self.store.remoteAttempts(after: last!)
                last = newest
                self.guardEngine.absorb(attempts)
                if let origin = trustedChanged.origin.withLock({ origin in defer { origin = nil }; return origin }) {
                    do {
                        try await self.reloadTrustedNetworks(changedBy: origin)
                    } catch {
                        trustedChanged.origin.withLock { $0 = $0 ?? origin }  // read again at the next poll
                        throw error
                    }
                }
                if sinceReconcile >= self.reconcile {
                    let now = self.guardEngine.clock.now()
                    for ban in try await self.store.activeBans(now: now) where self.guardEngine.ban(for: ban.key) == nil {
                        self.guardEngine.applyRemoteBan(ban)
                    }
                    for key in try await self.store.liftedBans(since: lastReconcile + .seconds(-60)) {
                        self.guardEngine.liftRemoteBan(key)
                    }
                    try await self.reloadTrustedNetworks(changedBy: nil)
                    lastReconcile = now
                    sinceReconcile = .zero
                }
                self.recovered(outage)
            } catch {
                self.failed(outage, error)
                sinceReconcile = self.reconcile  // reconcile first thing when it is back
            }
            try await Task.sleep(for: self.poll)
            sinceReconcile += self.poll
        }
    }

    private func failed(_ outage: OutageFlag, _ error: any Error) {
        if !outage.down.exchange(true, ordering: .relaxed) {
            self.logger.error("cluster: the database is unreachable (\(error)); deciding from local state until it is back")
        }
    }

    private func recovered(_ outage: OutageFlag) {
        if outage.down.exchange(false, ordering: .relaxed) { self.logger.notice("cluster: the database is back; catching up") }
    }
}

/// Which guard last said the trusted networks changed, until they are read again.
final class TrustedChange: Sendable {
    let origin = Mutex<String?>(nil)
}

/// Whether the database is known to be down (so that an outage is logged once).
final class OutageFlag: Sendable {
    let down = Atomic<Bool>(false)
}

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields (the
/// admin token, webhook secret, database URL and policy credentials live in them).
extension ClusterSyncService: CustomStringConvertible {
    var description: String { "ClusterSyncService" }
}
