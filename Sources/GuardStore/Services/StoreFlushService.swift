// Writes the queued events to the state store every `state.flush_interval`, prunes old rows
// once an hour, and flushes one last time at shutdown. A store that fails is logged once when
// it starts failing and once when it is back; meanwhile decisions go on from memory and the
// events wait in the queue, in order.

import GuardCore
import Logging
import ServiceLifecycle
import Synchronization

public struct StoreFlushService: Service {
    let writer: StoreWriter
    let interval: Duration
    let retention: Duration
    let clock: any GuardClock
    let logger: Logger

    public init(writer: StoreWriter, interval: Duration, retention: Duration, clock: any GuardClock, logger: Logger) {
        self.writer = writer
        self.interval = interval
        self.retention = retention
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        let failing = Atomic<Bool>(false)
        try? await cancelWhenGracefulShutdown {
            var sincePrune = Duration.zero
            while !Task.isCancelled {
                // Every interval, or as soon as a ban or lift is queued (checked every 20ms).
                var waited = Duration.zero
                while waited < self.interval && !self.writer.takeUrgent() {
                    try await Task.sleep(for: .milliseconds(20))
                    waited += .milliseconds(20)
                }
                failing.store(await self.flush(failing: failing.load(ordering: .relaxed)), ordering: .relaxed)
                sincePrune += max(waited, .milliseconds(20))
                if sincePrune >= .seconds(3600) && !failing.load(ordering: .relaxed) {
                    sincePrune = .zero
                    try? await self.writer.store.prune(before: self.clock.now() + .nanoseconds(-self.retention.nanosecondsClamped))
                }
            }
        }
        _ = await self.flush(failing: failing.load(ordering: .relaxed))
        if self.writer.pendingCount > 0 {
            self.logger.error("state store: \(self.writer.pendingCount) events could not be written before stopping")
        }
    }

    /// Returns whether the store is failing now.
    private func flush(failing: Bool) async -> Bool {
        do {
            try await self.writer.flush()
            if failing { self.logger.notice("state store: writing again; the queued events are written") }
            return false
        } catch {
            if !failing {
                self.logger.error(
                    "state store: \(error); decisions go on from memory, events are queued (\(self.writer.pendingCount) now) and written when it is back")
            }
            return true
        }
    }
}

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields (the
/// admin token, webhook secret, database URL and policy credentials live in them).
extension StoreFlushService: CustomStringConvertible {
    public var description: String { "StoreFlushService" }
}
