// Where alerts go besides the log: syslog and webhooks, folded into digests (AlertFolder).
// The sink only hands an alert over (it never waits); this service folds, formats and
// delivers, each webhook delivery in its own child task so a slow receiver delays nobody.
// At shutdown the digests still open are sent at once, and deliveries under way get one
// last try.

import GuardCore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

public final class AlertService: Service, EventSink, Sendable {
    enum Input: Sendable {
        case alert(Alert)
        case tick
        case shutdown
    }

    /// At most this many deliveries under way; more are dropped (and counted).
    public static let maxInFlight = 256

    let folder: Mutex<AlertFolder>
    let syslog: SyslogWriter?
    let webhooks: [WebhookSender]
    let clock: any GuardClock
    let logger: Logger
    let tickInterval: Duration
    private let input: AsyncStream<Input>
    private let inputContinuation: AsyncStream<Input>.Continuation
    private let stopping = Atomic<Bool>(false)
    private let inFlight = Atomic<Int>(0)
    private let nextDelivery = Atomic<Int>(1)
    private let syslogFailed = Atomic<Bool>(false)
    private let outcomes: [String: Counter]

    public init(
        configuration: AlertsConfiguration, clock: any GuardClock, logger: Logger, tickInterval: Duration = .seconds(1),
        backoffUnit: Duration = .seconds(1), factory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.folder = Mutex(AlertFolder(interval: configuration.digestInterval))
        self.syslog = configuration.syslog ? SyslogWriter(socketPath: configuration.syslogSocket) : nil
        self.webhooks = configuration.webhooks.compactMap { HTTPURL($0) }.map {
            var sender = WebhookSender(url: $0, secret: configuration.webhookSecret, timeout: configuration.webhookTimeout, retries: configuration.webhookRetries)
            sender.backoffUnit = backoffUnit
            return sender
        }
        self.clock = clock
        self.logger = logger
        self.tickInterval = tickInterval
        (self.input, self.inputContinuation) = AsyncStream<Input>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        var outcomes: [String: Counter] = [:]
        for result in ["delivered", "retried", "failed", "dropped"] {
            outcomes[result] = Counter(label: MetricNames.webhookDeliveries, dimensions: [("result", result)], factory: factory)
        }
        self.outcomes = outcomes
    }

    /// True when alerts go anywhere besides the log.
    public var hasTargets: Bool { self.syslog != nil || !self.webhooks.isEmpty }

    public func record(_ event: GuardEvent) {
        if case .alert(let alert) = event { self.inputContinuation.yield(.alert(alert)) }
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                while !self.stopping.load(ordering: .relaxed) {
                    try? await Task.sleep(for: self.tickInterval)
                    self.inputContinuation.yield(.tick)
                }
            }
            group.addTask {
                try? await gracefulShutdown()
                self.inputContinuation.yield(.shutdown)
            }
            for await input in self.input {
                let now = self.clock.now()
                let deliveries: [AlertDelivery]
                switch input {
                case .alert(let alert): deliveries = self.folder.withLock { $0.receive(alert, now: now) }
                case .tick: deliveries = self.folder.withLock { $0.tick(now: now) }
                case .shutdown:
                    deliveries = self.folder.withLock { $0.flush(now: now) }
                    self.stopping.store(true, ordering: .relaxed)
                }
                for delivery in deliveries { self.dispatch(delivery, now: now, group: &group) }
                if case .shutdown = input { break }
            }
            self.stopping.store(true, ordering: .relaxed)
        }
    }

    private func dispatch(_ delivery: AlertDelivery, now: Timestamp, group: inout DiscardingTaskGroup) {
        if let syslog {
            if let problem = syslog.send(syslog.line(for: delivery, now: now)) {
                if !self.syslogFailed.exchange(true, ordering: .relaxed) { self.logger.warning("alerts to syslog: \(problem)") }
            } else {
                self.syslogFailed.store(false, ordering: .relaxed)
            }
        }
        guard !self.webhooks.isEmpty else { return }
        let body = delivery.json
        for webhook in self.webhooks {
            guard self.inFlight.add(1, ordering: .relaxed).newValue <= Self.maxInFlight else {
                self.inFlight.subtract(1, ordering: .relaxed)
                self.outcomes["dropped"]?.increment()
                self.logger.warning("alert webhook \(webhook.url.hostHeader): \(Self.maxInFlight) deliveries under way; this one dropped")
                continue
            }
            let id = "\(now.nanoseconds / 1_000_000)-\(self.nextDelivery.add(1, ordering: .relaxed).oldValue)"
            group.addTask {
                let result = await webhook.deliver(
                    body: body, id: id, clock: self.clock, stopping: { self.stopping.load(ordering: .relaxed) }, logger: self.logger)
                self.inFlight.subtract(1, ordering: .relaxed)
                switch result {
                case .delivered(let attempts):
                    self.outcomes[attempts > 1 ? "retried" : "delivered"]?.increment()
                case .failed(let attempts, let reason):
                    self.outcomes["failed"]?.increment()
                    self.logger.warning(
                        "alert webhook \(webhook.url.hostHeader): not delivered after \(attempts) tries: \(reason)", metadata: ["delivery": .string(id)])
                }
            }
        }
    }
}

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields (the
/// admin token, webhook secret, database URL and policy credentials live in them).
extension AlertService: CustomStringConvertible {
    public var description: String { "AlertService" }
}
