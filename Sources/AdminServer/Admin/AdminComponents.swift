// The operator's side of a running guard, put together: the sinks that hear every event (the
// recent-event feed, the statistics, the alert log, the metrics, alert delivery), and the
// services that serve them (the admin server; alert delivery to syslog and webhooks).
// Built in two steps because the engine needs the sinks and the API needs the engine.

import GuardCore
import GuardStore
import Hummingbird
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

public final class AdminComponents: Sendable {
    public let configuration: GuardConfiguration
    public let feed: EventFeed
    public let stats: StatsRecorder
    public let alertLog: AlertLog
    public let metrics: GuardMetrics
    public let registry: MetricsRegistry
    public let alertService: AlertService

    public init(configuration: GuardConfiguration, registry: MetricsRegistry, clock: any GuardClock, logger: Logger) {
        self.configuration = configuration
        self.feed = EventFeed(capacity: configuration.admin.eventBuffer)
        self.stats = StatsRecorder(policy: configuration.policy)
        self.alertLog = AlertLog()
        self.registry = registry
        self.metrics = GuardMetrics(factory: registry.factory)
        self.alertService = AlertService(configuration: configuration.alerts, clock: clock, logger: logger, factory: registry.factory)
    }

    /// What the engine's events go to besides the event log and the state.
    public var sinks: [any EventSink] {
        var sinks: [any EventSink] = [self.metrics, self.alertLog]
        if !self.configuration.admin.listen.isEmpty { sinks += [self.feed, self.stats] }
        if self.alertService.hasTargets { sinks.append(self.alertService) }
        return sinks
    }

    /// What the state held at start: the counts of the last day, the last alerts.
    public func absorb(attempts: [AuthAttempt], store: (any StateStore)?, logger: Logger) async {
        self.stats.absorb(attempts)
        guard let store else { return }
        do {
            self.alertLog.load(try await store.recentAlerts(limit: self.alertLog.capacity))
        } catch {
            logger.warning("state: the earlier alerts cannot be read (\(error)); GET /api/alerts shows those from now on")
        }
    }

    /// The admin server (when `admin.listen` is set) and alert delivery (when it has somewhere
    /// to go), and the trusted networks (read from the state and given to the engine, with or
    /// without the server; the cluster sync reads them again when another guard changes them).
    /// The token file is created here on first start; a trusted-network list that cannot be
    /// read from the state stops the start.
    public func services(
        guardEngine: Guard, store: (any StateStore)?, logger: Logger, onListening: @escaping @Sendable (String) async -> Void = { _ in }
    ) async throws -> (services: [ServiceGroupConfiguration.ServiceConfiguration], trusted: TrustedNetworkBook) {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if self.alertService.hasTargets {
            services.append(.init(service: self.alertService))
        }
        let trusted = TrustedNetworkBook(configured: self.configuration.policy.trustedNetworks.networks, store: store, guardEngine: guardEngine)
        do {
            try await trusted.load()
        } catch {
            throw AdminStartError(description: "state: the trusted networks cannot be read (\(error))")
        }
        let admin = self.configuration.admin
        guard !admin.listen.isEmpty, let address = HostPort(admin.listen) else { return (services, trusted) }
        let token: AdminToken
        do {
            token = try AdminToken.resolve(admin, statePath: self.configuration.state.url.isEmpty ? self.configuration.state.path : "", create: true)
        } catch {
            throw AdminStartError(description: "\(error)")
        }
        if case .created(let path) = token.origin {
            if isatty(STDOUT_FILENO) == 1 {
                print("The admin API's token, kept in \(path) (mode 0600) and shown only now:\n  \(token.value)")
            }
            logger.notice("admin API: a new token was created in \(path) (mode 0600); `smtpguard bans list` and the other admin commands read it from there")
        }
        let api = AdminAPI(
            guardEngine: guardEngine, feed: self.feed, stats: self.stats, alerts: self.alertLog, trusted: trusted, metrics: self.metrics,
            registry: self.registry, token: token.value, maxBodySize: admin.maxBodySize, logger: logger)
        services.append(
            .init(
                service: AdminServerService(api: api, address: address, logger: logger, onListening: onListening),
                failureTerminationBehavior: .gracefullyShutdownGroup))
        return (services, trusted)
    }
}

public struct AdminStartError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// The admin server: Hummingbird on `admin.listen`. At shutdown the event streams end first,
/// so that the server's own graceful shutdown does not wait for them.
public struct AdminServerService: Service {
    let api: AdminAPI
    let address: HostPort
    let logger: Logger
    let onListening: @Sendable (String) async -> Void

    public init(api: AdminAPI, address: HostPort, logger: Logger, onListening: @escaping @Sendable (String) async -> Void = { _ in }) {
        self.api = api
        self.address = address
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let feed = self.api.feed
        try await HTTPListener(name: "admin API", address: self.address, logger: self.logger).run(
            self.api.router().buildResponder(),
            bindFailed: { AdminStartError(description: "admin.listen \(self.address): \($0)") },
            listening: { bound in
                self.logger.info("admin API, dashboard and /metrics on http://\(bound)/ (admin.listen)")
                await self.onListening(bound.description)
            },
            shuttingDown: { feed.close() })  // the event streams end first
    }
}

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields (the
/// admin token, webhook secret, database URL and policy credentials live in them).
extension AdminServerService: CustomStringConvertible {
    public var description: String { "AdminServerService" }
}
