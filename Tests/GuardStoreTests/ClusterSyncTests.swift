// The cluster sync driven by a fake ClusterStore: what other guards publish (notifications,
// rows read at the polls and reconciliations) reaches this guard's engine, and what this
// guard published itself is not applied twice.

import GuardCore
import GuardStore
import Logging
import Synchronization
import Testing

@Suite struct ClusterSyncTests {
    final class FakeClusterStore: ClusterStore {
        struct State {
            var messages: [ClusterMessage] = []
            var activeBans: [Ban] = []
            var lifted: [BanKey] = []
            var listens = 0
        }
        let guardID = "this-guard"
        let state = Mutex(State())

        func listen(listening: () -> Void, received: (ClusterMessage) -> Void) async throws {
            self.state.withLock { $0.listens += 1 }
            listening()
            while true {
                let messages = self.state.withLock { state in defer { state.messages = [] }; return state.messages }
                for message in messages { received(message) }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        func lastAttemptID() async throws -> Int { 0 }
        func remoteAttempts(after: Int) async throws -> (attempts: [AuthAttempt], last: Int) { ([], after) }
        func activeBans(now: Timestamp) async throws -> [Ban] { self.state.withLock { $0.activeBans } }
        func liftedBans(since: Timestamp) async throws -> [BanKey] { self.state.withLock { $0.lifted } }
    }

    static func ban(_ address: String, clock: ManualClock) -> Ban {
        Ban(key: .ip(IPAddress(address)!), since: clock.now(), until: clock.now() + .seconds(600), reason: .manual, offense: 1)
    }

    /// Runs the sync beside `body`, then stops it.
    static func withSync(
        _ store: FakeClusterStore, engine: Guard, reconcile: Duration = .seconds(3600), _ body: () async throws -> Void
    ) async throws {
        let trusted = TrustedNetworkBook(configured: [], store: nil, guardEngine: engine)
        let sync = ClusterSyncService(
            store: store, guardEngine: engine, trusted: trusted, logger: Logger(label: "test"), poll: .milliseconds(10), reconcile: reconcile,
            relisten: .milliseconds(10))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await sync.run() }
            defer { group.cancelAll() }
            try await body()
        }
    }

    static func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<400 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return condition()
    }

    @Test("a ban another guard announces is enforced, and its lift lifts it; this guard's own word is not applied again")
    func notificationsReachTheEngine() async throws {
        let clock = ManualClock()
        let engine = Guard(policy: GuardPolicy(), clock: clock, events: FanOutEventSink([]), seed: 1)
        let store = FakeClusterStore()
        let theirs = Self.ban("192.0.2.7", clock: clock)
        let ours = Self.ban("192.0.2.8", clock: clock)
        try await Self.withSync(store, engine: engine) {
            store.state.withLock { $0.messages = [.ban(ours, guard: store.guardID), .ban(theirs, guard: "other-guard")] }
            #expect(await Self.eventually { engine.ban(for: theirs.key) != nil })
            #expect(engine.ban(for: ours.key) == nil)
            store.state.withLock { $0.messages = [.lift(theirs.key, guard: "other-guard")] }
            #expect(await Self.eventually { engine.ban(for: theirs.key) == nil })
        }
        #expect(store.state.withLock { $0.listens } >= 1)
    }

    @Test("reconciliation enforces the bans in force that no notification brought, and lifts the lifted ones")
    func reconciliationHealsMissedNotifications() async throws {
        let clock = ManualClock()
        let engine = Guard(policy: GuardPolicy(), clock: clock, events: FanOutEventSink([]), seed: 1)
        let store = FakeClusterStore()
        let missed = Self.ban("198.51.100.1", clock: clock)
        let liftedElsewhere = Self.ban("198.51.100.2", clock: clock)
        engine.applyRemoteBan(liftedElsewhere)
        store.state.withLock { state in
            state.activeBans = [missed]
            state.lifted = [liftedElsewhere.key]
        }
        try await Self.withSync(store, engine: engine, reconcile: .milliseconds(20)) {
            #expect(await Self.eventually { engine.ban(for: missed.key) != nil && engine.ban(for: liftedElsewhere.key) == nil })
        }
    }
}
