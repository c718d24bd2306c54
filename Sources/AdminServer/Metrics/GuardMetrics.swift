// The guard's Prometheus metrics (swift-metrics, exposed by swift-prometheus at /metrics).
// Labels take only a few fixed values (outcomes, mechanisms, sources, scopes, reasons,
// kinds): never a username, an address or anything a client chose. The other modules record
// their own timings and counters through swift-metrics under the names of GuardCore's
// MetricNames; the HELP texts and histogram buckets given there are applied here.

import CoreMetrics
import GuardCore
import Metrics
import Prometheus

/// The Prometheus registry behind /metrics, and the factory that feeds it.
public struct MetricsRegistry: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory

    public init() {
        self.registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: self.registry)
        factory.durationHistogramBuckets = MetricNames.buckets
        self.factory = factory
    }

    /// Makes this registry the process's metrics backend (once, at start): the other modules'
    /// timers and counters then land in it.
    public func bootstrapSystem() {
        MetricsSystem.bootstrap(self.factory)
    }

    /// The Prometheus text, with a HELP line before each known metric's TYPE line.
    public func exposition() -> String {
        let text = self.registry.emitToString()
        var out = ""
        out.reserveCapacity(text.utf8.count + 2048)
        let helps = Dictionary(MetricNames.help.map { ($0.name, $0.help) }, uniquingKeysWith: { first, _ in first })
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first, let help = helps[String(name)] {
                out += "# HELP \(name) \(help)\n"
            }
            out += line
            out += "\n"
        }
        while out.hasSuffix("\n\n") { out.removeLast() }
        return out
    }
}

/// Counts what the engine decides, from the events every source records.
public final class GuardMetrics: EventSink, Sendable {
    private struct AttemptLabels: Hashable {
        var outcome: AuthOutcome
        var mechanism: AuthMechanism
        var source: AttemptSource
    }

    private let attempts: [AttemptLabels: CoreMetrics.Counter]
    private let decisions: [Decision.Verdict: CoreMetrics.Counter]
    private let bans: [String: CoreMetrics.Counter]
    private let alerts: [Alert.Kind: CoreMetrics.Counter]
    private let active: [BanScope: CoreMetrics.Gauge]
    private let sendingRefusals: CoreMetrics.Counter
    private let tarpit: Metrics.Timer

    public init(factory: any MetricsFactory) {
        var attempts: [AttemptLabels: CoreMetrics.Counter] = [:]
        let outcomes: [AuthOutcome] = [.success, .failure, .tempFailure, .unverified, .abandoned]
        let sources: [AttemptSource] = [.proxy, .dovecotPolicy, .postfixPolicy, .logWatch, .windows]
        for outcome in outcomes {
            for mechanism in AuthMechanism.allCases {
                for source in sources {
                    attempts[AttemptLabels(outcome: outcome, mechanism: mechanism, source: source)] = CoreMetrics.Counter(
                        label: MetricNames.attempts,
                        dimensions: [("outcome", outcome.rawValue), ("mechanism", mechanism.rawValue), ("source", source.rawValue)], factory: factory)
                }
            }
        }
        self.attempts = attempts
        var decisions: [Decision.Verdict: CoreMetrics.Counter] = [:]
        for verdict in [Decision.Verdict.allow, .refuse, .tempFail] {
            decisions[verdict] = CoreMetrics.Counter(label: MetricNames.decisions, dimensions: [("decision", verdict.rawValue)], factory: factory)
        }
        self.decisions = decisions
        var bans: [String: CoreMetrics.Counter] = [:]
        for scope in BanScope.allCases {
            for reason in Reason.allCases {
                bans["\(scope.rawValue) \(reason.rawValue)"] = CoreMetrics.Counter(
                    label: MetricNames.bansIssued, dimensions: [("scope", scope.rawValue), ("reason", reason.rawValue)], factory: factory)
            }
        }
        self.bans = bans
        var alerts: [Alert.Kind: CoreMetrics.Counter] = [:]
        for kind in [Alert.Kind.weakCredentialAccepted, .possibleCompromise, .distributedAttack, .attackVolume, .backendPenalty, .sourceSilent] {
            alerts[kind] = CoreMetrics.Counter(label: MetricNames.alerts, dimensions: [("kind", kind.rawValue)], factory: factory)
        }
        self.alerts = alerts
        var active: [BanScope: CoreMetrics.Gauge] = [:]
        for scope in BanScope.allCases {
            active[scope] = CoreMetrics.Gauge(label: MetricNames.activeBans, dimensions: [("scope", scope.rawValue)], factory: factory)
        }
        self.active = active
        self.sendingRefusals = CoreMetrics.Counter(label: MetricNames.sendingRefusals, factory: factory)
        self.tarpit = Metrics.Timer(label: MetricNames.tarpitDelay, factory: factory)
    }

    public func record(_ event: GuardEvent) {
        switch event {
        case .attempt(let record):
            let attempt = record.attempt
            // A pending attempt is decided now; its outcome is counted when it is reported.
            self.decisions[record.decision.verdict]?.increment()
            if record.decision.delay > .zero { self.tarpit.recordNanoseconds(record.decision.delay.nanosecondsClamped) }
            guard attempt.outcome != .pending else { return }
            self.attempts[AttemptLabels(outcome: attempt.outcome, mechanism: attempt.mechanism, source: attempt.source)]?.increment()
        case .ban(let ban):
            self.bans["\(ban.key.scope.rawValue) \(ban.reason.rawValue)"]?.increment()
        case .alert(let alert):
            self.alerts[alert.kind]?.increment()
        case .sending(let record):
            if !record.decision.allowed { self.sendingRefusals.increment() }
        case .unban:
            return
        }
    }

    /// Sets the active-ban gauges (at each scrape).
    public func updateActiveBans(_ bans: [Ban]) {
        var counts: [BanScope: Int] = [:]
        for ban in bans { counts[ban.key.scope, default: 0] += 1 }
        for scope in BanScope.allCases { self.active[scope]?.record(counts[scope] ?? 0) }
    }
}
