// One at a time, for async code: the store's single connection is opened and used by one
// caller at a time (the flush's transaction, the cluster follower's polls, the admin API's
// reads), so that two callers never open two connections at once (the second one would be
// dropped unclosed) and no query lands inside another caller's transaction. The store bounds
// each turn with `state.timeout`, so a stalled server cannot hold the gate for ever.

import Synchronization

final class SerialGate: Sendable {
    private struct State {
        var busy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    /// Runs `body` when no other caller is inside; callers go in the order they came.
    func run<T>(_ body: () async throws -> T) async rethrows -> T {
        await self.enter()
        defer { self.leave() }
        return try await body()
    }

    private func enter() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let free = self.state.withLock { state -> Bool in
                if state.busy {
                    state.waiters.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if free { continuation.resume() }
        }
    }

    private func leave() {
        let next = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.busy = false
                return nil
            }
            return state.waiters.removeFirst()  // stays busy: handed straight to the next caller
        }
        next?.resume()
    }
}
