// Enforces bans in the firewall: at start the table / sets are created empty and every ban in
// force is put in (one batch); then, every 50 ms, the bans and unbans the engine published since
// are applied as one batch; while bans pour in (a batch of a hundred or more), every 500 ms,
// so that a mass attack costs a few large commands rather than many small ones. A batch that fails is logged with what the tool said and kept for
// the next try, so a firewall that comes back gets every ban. The commands run on a thread of
// their own (FirewallWorker), never on Swift's cooperative pool.

import GuardCore
import LogWatch
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Hears bans and unbans from the engine; the firewall service takes them in batches.
final class FirewallQueue: EventSink {
    private let pending = Mutex<[GuardEvent]>([])

    func record(_ event: GuardEvent) {
        switch event {
        case .ban, .unban: self.pending.withLock { $0.append(event) }
        case .attempt, .alert, .sending: return
        }
    }

    func take() -> [GuardEvent] { self.pending.withLock { events in defer { events.removeAll() }; return events } }
}

/// Firewall commands block their thread (posix_spawn, then waitpid until nft is done): they run
/// on one thread of their own, in order, so a slow or hung nft never holds a thread of Swift's
/// cooperative pool, where the engine's decisions, the policy services and the admin API run.
struct FirewallWorker: Sendable {
    let pool: NIOThreadPool

    static func start() -> FirewallWorker {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return FirewallWorker(pool: pool)
    }

    func run(_ body: @escaping @Sendable () throws -> Void) async throws {
        try await self.pool.runIfActive(body)
    }

    func stop() async {
        try? await self.pool.shutdownGracefully()
    }
}

struct FirewallService: Service {
    let runner: FirewallRunner
    let queue: FirewallQueue
    let guardEngine: Guard
    let logger: Logger

    func run() async throws {
        var model = FirewallModel()
        // Start: empty sets, then every ban in force.
        let initial = model.changes(
            for: self.guardEngine.activeBans().map { GuardEvent.ban($0) }, policy: self.guardEngine.policy, now: self.seconds(),
            timeouts: self.runner.hasTimeouts)
        let worker = FirewallWorker.start()
        let runner = self.runner
        do {
            try await worker.run {
                try runner.setup()
                try runner.apply(initial)
            }
        } catch {
            await worker.stop()
            throw StartupError("firewall (\(self.runner.configuration.backend.rawValue)): \(error)")
        }
        self.logger.info("firewall \(self.runner.configuration.backend.rawValue): ready, \(initial.count) bans in force applied")
        let started = model
        try? await cancelWhenGracefulShutdown { try await self.loop(model: started, worker: worker) }
        await worker.stop()
    }

    private func seconds() -> Int64 { self.guardEngine.clock.now().nanoseconds / 1_000_000_000 }

    private func loop(model: FirewallModel, worker: FirewallWorker) async throws {
        var model = model
        var retry: [FirewallChange] = []
        var failing = false
        var lastExpiry = ContinuousClock.now
        var pause = Duration.milliseconds(50)
        while !Task.isCancelled {
            try await Task.sleep(for: pause)
            let events = self.queue.take()
            let changes = retry + model.changes(for: events, policy: self.guardEngine.policy, now: self.seconds(), timeouts: self.runner.hasTimeouts)
            if !changes.isEmpty {
                do {
                    let began = ContinuousClock.now
                    let runner = self.runner
                    try await worker.run { try runner.apply(changes) }
                    self.logger.debug("firewall: \(changes.count) changes applied in one batch (\((ContinuousClock.now - began).compactText))")
                    pause = changes.count >= 100 ? .milliseconds(500) : .milliseconds(50)
                    retry = []
                    if failing { self.logger.notice("firewall: applying bans again") }
                    failing = false
                } catch {
                    if !failing { self.logger.error("firewall: \(error); the bans are kept and tried again") }
                    failing = true
                    retry = changes
                }
            }
            if ContinuousClock.now - lastExpiry >= .seconds(1) {
                lastExpiry = .now
                model.expire(now: self.seconds())
            }
        }
    }
}

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields (the
/// admin token, webhook secret, database URL and policy credentials live in them).
extension FirewallService: CustomStringConvertible {
    var description: String { "FirewallService" }
}
