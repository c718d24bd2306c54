// Keeps a guard in step with the other guards on the same PostgreSQL database (any
// ClusterStore: PostgresStateStore in service, a fake in the tests):
// - bans and lifts arrive as notifications (LISTEN on PostgresStateStore.notifyChannel) and
//   are enforced at once;
//   so does word that the trusted networks changed: they are read again at the next poll
//   (not in the listener, so that no read of the database holds up the next ban);
// - attempts the other guards saw are read every `poll` (by row id) and counted here, so a
//   guessing run spread over several guards is counted as one;
// - every `reconcile`, the bans in force, the recent lifts and the trusted networks are read
//   again, so a missed notification heals.
// A database that goes away is logged once; the guard goes on deciding from its own state and
// catches up when it is back. It trusts what the store reads (rows and notifications of the
// guards that share the database); a notification that does not parse is dropped.

import GuardCore
import Logging
import ServiceLifecycle
import Synchronization

/// What the cluster sync needs of a shared store.
public protocol ClusterStore: Sendable {
    /// This guard among the others (its own notifications are not applied again).
    var guardID: String { get }
    /// Listens on the cluster's channel, on a connection of its own: `listening` once the
    /// listen is in place, then `received` for every message that parses, until the
    /// connection ends (returns) or fails (throws).
    func listen(listening: () -> Void, received: (ClusterMessage) -> Void) async throws
    /// The highest attempt row id now (where a guard starts following the others).
    func lastAttemptID() async throws -> Int
    /// Settled attempts written by other guards after row `after`, and the last row id seen.
    func remoteAttempts(after: Int) async throws -> (attempts: [AuthAttempt], last: Int)
    /// Bans in force now, for reconciliation.
    func activeBans(now: Timestamp) async throws -> [Ban]
    /// Bans lifted since `since`.
    func liftedBans(since: Timestamp) async throws -> [BanKey]
}

public struct ClusterSyncService: Service {
    let store: any ClusterStore
    let guardEngine: Guard
    let trusted: TrustedNetworkBook
    let logger: Logger
    let poll: Duration
    let reconcile: Duration
    /// The wait before listening again after the notification connection failed.
    let relisten: Duration

    public init(
        store: any ClusterStore, guardEngine: Guard, trusted: TrustedNetworkBook, logger: Logger, poll: Duration = .milliseconds(200),
        reconcile: Duration = .seconds(10), relisten: Duration = .seconds(1)
    ) {
        self.store = store
        self.guardEngine = guardEngine
        self.trusted = trusted
        self.logger = logger
        self.poll = poll
        self.reconcile = reconcile
        self.relisten = relisten
    }

    public func run() async throws {
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
                try await self.store.listen(
                    listening: { self.recovered(outage) },
                    received: { self.apply($0, trustedChanged: trustedChanged) })
            } catch {
                self.failed(outage, error)
            }
            try await Task.sleep(for: self.relisten)
        }
    }

    private func apply(_ message: ClusterMessage, trustedChanged: TrustedChange) {
        guard message.guardID != self.store.guardID else { return }
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
    public var description: String { "ClusterSyncService" }
}
