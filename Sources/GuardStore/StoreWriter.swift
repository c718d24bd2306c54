// Between the engine and the store: every event the guard publishes is queued here at once
// (a lock and an append, never a disk wait on the decision path) and written in batches by
// `flush()`, which the flush service calls every `state.flush_interval`. A batch that cannot
// be written stays queued, in order, for the next flush; past `maxPending` events the oldest
// attempts are dropped first (bans and alerts are kept) and counted.

import GuardCore
import Metrics
import Synchronization

public final class StoreWriter: EventSink, Sendable {
    public let store: any StateStore
    public let maxPending: Int
    private let pending = Mutex<[GuardEvent]>([])
    private let droppedAttempts = Atomic<Int>(0)
    private let writtenEvents = Atomic<Int>(0)
    private let urgentEvents = Atomic<Bool>(false)
    /// MetricNames.storeWrite: one batch written.
    private let writeTime = Metrics.Timer(label: MetricNames.storeWrite)

    public init(store: any StateStore, maxPending: Int = 1_000_000) {
        self.store = store
        self.maxPending = maxPending
    }

    public func record(_ event: GuardEvent) {
        switch event {
        case .ban, .unban: self.urgentEvents.store(true, ordering: .relaxed)  // other guards wait for these
        case .attempt, .alert: break
        case .sending: return  // the event log's, not the state's
        }
        self.pending.withLock { queue in
            queue.append(event)
            if queue.count > self.maxPending, let index = queue.firstIndex(where: { if case .attempt = $0 { true } else { false } }) {
                queue.remove(at: index)
                self.droppedAttempts.add(1, ordering: .relaxed)
            }
        }
    }

    public var pendingCount: Int { self.pending.withLock { $0.count } }
    /// A ban or lift is queued: the flush service writes at once rather than at its interval.
    public func takeUrgent() -> Bool { self.urgentEvents.exchange(false, ordering: .relaxed) }
    public var dropped: Int { self.droppedAttempts.load(ordering: .relaxed) }
    /// Events written since start.
    public var written: Int { self.writtenEvents.load(ordering: .relaxed) }

    /// Writes what is queued; returns how many events were written. On failure the batch is
    /// put back in front of whatever came meanwhile, and the error is rethrown.
    @discardableResult
    public func flush() async throws -> Int {
        let batch = self.pending.withLock { queue -> [GuardEvent] in
            defer { queue.removeAll(keepingCapacity: true) }
            return queue
        }
        guard !batch.isEmpty else { return 0 }
        do {
            let began = ContinuousClock.now
            try await self.store.write(batch)
            self.writeTime.record(duration: ContinuousClock.now - began)
            self.writtenEvents.add(batch.count, ordering: .relaxed)
            return batch.count
        } catch {
            self.pending.withLock { queue in queue.insert(contentsOf: batch, at: 0) }
            throw error
        }
    }
}
