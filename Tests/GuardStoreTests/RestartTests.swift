// A guard, its store, a restart: the second guard goes on where the first stopped.

import Foundation
import GuardCore
import Testing

@testable import GuardStore

@Suite("Restart")
struct RestartTests {
    @Test("an attacker 5 failures into the limit before a restart is banned at the 6th after it; bans are enforced at once")
    func countsAndBansSurvive() async throws {
        let folder = try SQLiteStoreTests.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state.db").path
        var policy = GuardPolicy()
        policy.bans.jitter = 0
        let clock = ManualClock(Timestamp(seconds: 1_800_000_000))
        let attacker = IPAddress("203.0.113.9")!
        let banned = IPAddress("198.51.100.7")!
        func failure(_ client: IPAddress, _ user: String) -> AuthAttempt {
            AuthAttempt(time: clock.now(), client: client, username: user, outcome: .failure, source: .proxy)
        }

        do {
            let store = try await SQLiteStateStore.open(path: path)
            let writer = StoreWriter(store: store)
            let first = Guard(policy: policy, clock: clock, events: writer, seed: 1)
            // One client banned outright, another four failures short of it.
            for i in 0..<6 {
                let attempt = failure(banned, "user\(i % 2)")
                let decision = first.decide(attempt)
                writer.record(.attempt(AttemptRecord(attempt: attempt, session: "a", replyCode: 535, decision: decision)))
                clock.advance(by: .seconds(1))
            }
            #expect(first.connectionBan(for: banned) != nil)
            for i in 0..<5 {
                let attempt = failure(attacker, "alice\(i)")
                let decision = first.decide(attempt)
                writer.record(.attempt(AttemptRecord(attempt: attempt, session: "b", replyCode: 535, decision: decision)))
                clock.advance(by: .seconds(1))
            }
            #expect(first.connectionBan(for: attacker) == nil)
            try await writer.flush()
            await store.close()
        }

        clock.advance(by: .seconds(30))
        let store = try await SQLiteStateStore.open(path: path)
        let now = clock.now()
        let state = try await store.load(now: now, since: now + .seconds(-86_400), successesSince: now + .seconds(-30 * 86_400), bansSince: now + .seconds(-30 * 86_400))
        let second = Guard(policy: policy, clock: clock, seed: 2)
        second.restore(attempts: state.attempts, activeBans: state.bans, banHistory: state.banHistory)
        #expect(second.connectionBan(for: banned) != nil, "the ban holds from the first connection after the restart")
        #expect(second.connectionBan(for: attacker) == nil)
        let fifth = second.decide(failure(attacker, "alice9"))
        #expect(fifth.bansClient || second.connectionBan(for: attacker) != nil, "\(fifth)")
        await store.close()
    }
}

@Suite("Restart: known places")
struct KnownPlaceRestartTests {
    @Test("a login from last week still makes a known place after a restart")
    func knownPlaces() async throws {
        let folder = try SQLiteStoreTests.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state.db").path
        let clock = ManualClock(Timestamp(seconds: 1_800_000_000))
        let home = IPAddress("192.0.2.10")!
        let success = AuthAttempt(time: clock.now(), client: home, username: "alice", outcome: .success, source: .proxy)
        do {
            let store = try await SQLiteStateStore.open(path: path)
            try await store.write([.attempt(AttemptRecord(attempt: success, session: "s", replyCode: 235, decision: Decision(verdict: .allow)))])
            await store.close()
        }
        clock.advance(by: .seconds(7 * 86_400))
        let policy = GuardPolicy()
        let now = clock.now()
        let store = try await SQLiteStateStore.open(path: path)
        let state = try await store.load(
            now: now, since: now + .seconds(-86_400), successesSince: now + .seconds(-30 * 86_400), bansSince: now + .seconds(-30 * 86_400))
        await store.close()
        let restored = Guard(policy: policy, clock: clock, seed: 3)
        restored.restore(attempts: state.attempts, activeBans: state.bans, banHistory: state.banHistory)
        #expect(restored.isKnownPlace(home, username: "alice"))
        #expect(!restored.isKnownPlace(IPAddress("203.0.113.1")!, username: "alice"))
    }
}
