// Enforces bans in the firewall: at start the table / sets are created empty and every ban in
// force is put in (one batch); then, every 50 ms, the bans and unbans the engine published since
// are applied as one batch; while bans pour in (a batch of a hundred or more), every 500 ms,
// so that a mass attack costs a few large commands rather than many small ones. A batch that fails is logged with what the tool said and kept for
// the next try, so a firewall that comes back gets every ban. Every firewall.check_interval what
// the firewall holds is read back: a table that is gone (a `systemctl restart nftables` flushes
// the ruleset) is created again with every ban in force, missing elements are put back. The
// commands run on a thread of their own (FirewallWorker), never on Swift's cooperative pool.

import GuardCore
import Logging
import Metrics
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Hears bans and unbans from the engine; the firewall service takes them in batches.
public final class FirewallQueue: EventSink {
    private let pending = Mutex<[GuardEvent]>([])

    public init() {}

    public func record(_ event: GuardEvent) {
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
public struct FirewallWorker: Sendable {
    let pool: NIOThreadPool

    public static func start() -> FirewallWorker {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return FirewallWorker(pool: pool)
    }

    public func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await self.pool.runIfActive(body)
    }

    public func stop() async {
        try? await self.pool.shutdownGracefully()
    }
}

public struct FirewallService: Service {
    let runner: FirewallRunner
    let queue: FirewallQueue
    let guardEngine: Guard
    let logger: Logger
    let metrics = FirewallMetrics()

    public init(runner: FirewallRunner, queue: FirewallQueue, guardEngine: Guard, logger: Logger) {
        self.runner = runner
        self.queue = queue
        self.guardEngine = guardEngine
        self.logger = logger
    }

    /// A model of an empty firewall, and the changes that put every ban in force into it.
    private func everyBanInForce() -> (model: FirewallModel, changes: [FirewallChange]) {
        var model = FirewallModel()
        let changes = model.changes(
            for: self.guardEngine.activeBans().map { GuardEvent.ban($0) }, policy: self.guardEngine.policy, now: self.seconds(),
            timeouts: self.runner.hasTimeouts)
        return (model, changes)
    }

    public func run() async throws {
        // Start: empty sets, then every ban in force.
        let (model, initial) = self.everyBanInForce()
        let worker = FirewallWorker.start()
        let runner = self.runner
        do {
            try await worker.run {
                try runner.setup()
                try runner.apply(initial)
            }
        } catch {
            await worker.stop()
            throw WatchStartError("firewall (\(self.runner.configuration.backend.rawValue)): \(error)")
        }
        self.logger.info("firewall \(self.runner.configuration.backend.rawValue): ready, \(initial.count) bans in force applied")
        try? await cancelWhenGracefulShutdown { try await self.loop(model: model, worker: worker) }
        await worker.stop()
    }

    private func seconds() -> Int64 { self.guardEngine.clock.now().nanoseconds / 1_000_000_000 }

    private func loop(model: FirewallModel, worker: FirewallWorker) async throws {
        var model = model
        var retry: [FirewallChange] = []
        var failing = false
        var lastExpiry = ContinuousClock.now
        var lastCheck = ContinuousClock.now
        var lastWrite = ContinuousClock.now
        var pause = Duration.milliseconds(50)
        let checkInterval = self.runner.canReadBack ? self.runner.configuration.checkInterval : .zero
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
                    lastWrite = .now
                    if failing { self.logger.notice("firewall: applying bans again") }
                    failing = false
                } catch {
                    if !failing { self.logger.error("firewall: \(error); the bans are kept and tried again") }
                    self.metrics.failures.increment()
                    failing = true
                    retry = changes
                }
            }
            if ContinuousClock.now - lastExpiry >= .seconds(1) {
                lastExpiry = .now
                model.expire(now: self.seconds())
            }
            // Read back what the firewall holds: at once (at most every second) when a batch
            // failed, since its table may be gone; otherwise every check interval once no batch
            // has been written for that long (a batch the firewall took shows its table is
            // there, and reading 100,000 elements back takes seconds).
            guard checkInterval > .zero else { continue }
            let since = ContinuousClock.now - lastCheck
            let due = failing ? since >= .seconds(1) : since >= checkInterval && ContinuousClock.now - lastWrite >= checkInterval
            guard due else { continue }
            lastCheck = .now
            do {
                switch try await self.check(model: model, pending: !retry.isEmpty, worker: worker) {
                case .remade(let fresh):
                    model = fresh
                    retry = []
                    failing = false
                    lastWrite = .now
                case .elementsPutBack:
                    lastWrite = .now
                case .whole:
                    break
                }
            } catch {
                self.metrics.failures.increment()
                if !failing { self.logger.error("firewall: checking what it holds: \(error)") }
            }
        }
    }

    enum CheckResult {
        /// The table was gone and is made again, with every ban in force (the new model).
        case remade(FirewallModel)
        case elementsPutBack
        case whole
    }

    /// Reads back what the firewall holds. A missing table (sets, chain, jump) is created again
    /// with every ban in force; missing elements are put back (unless changes are still
    /// pending, which the next batch brings).
    private func check(model: FirewallModel, pending: Bool, worker: FirewallWorker) async throws -> CheckResult {
        let runner = self.runner
        let backend = runner.configuration.backend.rawValue
        guard let held = try await worker.run({ try runner.held() }) else {
            let (fresh, all) = self.everyBanInForce()
            try await worker.run {
                try runner.setup()
                try runner.apply(all)
            }
            self.metrics.repairs(.table).increment()
            self.metrics.restored.increment(by: all.count)
            self.logger.warning(
                "firewall \(backend): its table \(runner.names.table) was gone (a `systemctl restart nftables` or a flushed ruleset?); created it again with the \(all.count) bans in force")
            return .remade(fresh)
        }
        guard !pending else { return .whole }
        let now = self.seconds()
        // Looked up in every set: iptables has one chain, whatever the width of a network.
        let present = held.values.reduce(into: Set<IPNetwork>()) { $0.formUnion($1) }
        let missing: [FirewallChange] = model.entries.compactMap { entry, until in
            // Elements about to run out may already be gone by their own timeout.
            guard until > now + 2, !present.contains(entry.network) else { return nil }
            return .add(entry, seconds: Int(until - now))
        }
        guard !missing.isEmpty else { return .whole }
        try await worker.run { try runner.apply(missing) }
        self.metrics.repairs(.elements).increment()
        self.metrics.restored.increment(by: missing.count)
        self.logger.warning("firewall \(backend): \(missing.count) bans in force were missing from \(runner.names.table); put them back")
        return .elementsPutBack
    }
}

/// The firewall's own counters on /metrics.
struct FirewallMetrics: Sendable {
    enum Missing: String { case table, elements }
    let failures = Counter(label: MetricNames.firewallFailures)
    let restored = Counter(label: MetricNames.firewallRestoredBans)
    private let tableRepairs = Counter(label: MetricNames.firewallRepairs, dimensions: [("missing", Missing.table.rawValue)])
    private let elementRepairs = Counter(label: MetricNames.firewallRepairs, dimensions: [("missing", Missing.elements.rawValue)])
    func repairs(_ missing: Missing) -> Counter { missing == .table ? self.tableRepairs : self.elementRepairs }
}

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields (the
/// admin token, webhook secret, database URL and policy credentials live in them).
extension FirewallService: CustomStringConvertible {
    public var description: String { "FirewallService" }
}
