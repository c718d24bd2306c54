// The watchdog of one use of a PostgreSQL connection (state.timeout).

import Synchronization
import Testing

@testable import GuardStore

/// The watchdog of one use of the PostgreSQL connection (state.timeout).
@Suite struct UseWatchTests {
    /// A write that keeps finishing statements is not cut off, though it lasts longer than the
    /// timeout; once the statements stop, it is.
    @Test func progressKeepsAUseAliveAndSilenceExpiresIt() async throws {
        let watch = UseWatch()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await watch.expire(after: .seconds(1)) }
            try await UseWatch.$current.withValue(watch) {
                for _ in 0..<40 {  // 40 statements of 50 ms: twice the timeout in all
                    try await Task.sleep(for: .milliseconds(50))
                    UseWatch.progressed()
                }
            }
            #expect(!watch.hasExpired)
            try await group.next()  // nothing finishes from now on
            #expect(watch.hasExpired)
        }
    }

    /// A use that ends first cancels its watchdog, which then marks nothing.
    @Test func aUseThatEndsInTimeIsNotMarked() async throws {
        let watch = UseWatch()
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await watch.expire(after: .seconds(60)) }
            group.cancelAll()
            await #expect(throws: CancellationError.self) { try await group.next() }
        }
        #expect(!watch.hasExpired)
        #expect(UseWatch.current == nil)  // progress outside a use goes nowhere
        UseWatch.progressed()
    }
}
