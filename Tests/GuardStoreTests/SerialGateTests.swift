import Synchronization
import Testing

@testable import GuardStore

@Suite struct SerialGateTests {
    final class Tally: Sendable {
        let inside = Atomic<Int>(0)
        let most = Atomic<Int>(0)
        let finished = Atomic<Int>(0)
    }

    /// Many callers at once: never two inside, and every one gets in.
    @Test func oneCallerAtATime() async throws {
        let gate = SerialGate()
        let tally = Tally()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    try await gate.run {
                        let now = tally.inside.add(1, ordering: .relaxed).newValue
                        _ = tally.most.max(now, ordering: .relaxed)
                        try await Task.sleep(for: .microseconds(50))
                        tally.inside.subtract(1, ordering: .relaxed)
                    }
                    tally.finished.add(1, ordering: .relaxed)
                }
            }
            try await group.waitForAll()
        }
        #expect(tally.most.load(ordering: .relaxed) == 1)
        #expect(tally.finished.load(ordering: .relaxed) == 200)
    }

    /// A caller whose body throws lets the next one in.
    @Test func anErrorFreesTheGate() async throws {
        struct Failure: Error {}
        let gate = SerialGate()
        await #expect(throws: Failure.self) { try await gate.run { throw Failure() } }
        let value = await gate.run { 42 }
        #expect(value == 42)
    }
}
