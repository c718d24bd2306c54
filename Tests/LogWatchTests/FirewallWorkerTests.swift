// Firewall commands must not hold Swift's cooperative threads while they run.

import Foundation
import Testing

@testable import LogWatch

@Suite("Firewall worker")
struct FirewallWorkerTests {
    @Test("slow firewall commands, one per cooperative thread and more, leave the cooperative pool free", .timeLimit(.minutes(1)))
    func slowCommandsDoNotStallTasks() async throws {
        let workers = (0...ProcessInfo.processInfo.activeProcessorCount).map { _ in FirewallWorker.start() }
        let began = ContinuousClock.now
        try await withThrowingTaskGroup(of: Duration?.self) { group in
            for worker in workers {
                group.addTask {
                    try await worker.run { try FirewallRunner.run("sleep", ["3"]) }
                    return nil
                }
            }
            // Meanwhile a task that needs a cooperative thread: it must not wait for the commands.
            group.addTask {
                try await Task.sleep(for: .milliseconds(200))
                return ContinuousClock.now - began
            }
            var ticked: Duration?
            for try await result in group { if let result { ticked = result } }
            let tickedAt = try #require(ticked)
            #expect(tickedAt < .seconds(2), "a task waited \(tickedAt) behind firewall commands")
        }
        #expect(ContinuousClock.now - began >= .seconds(3), "the commands really ran")
        for worker in workers { await worker.stop() }
    }
}
