// What `run` and `watch` (and `replay`) do alike at start: logging at the chosen level, the
// configuration file, the event log.

import AdminServer
import ArgumentParser
import GuardCore
import GuardStore
import Logging
import NIOCore
import PolicyServers
import SMTPProxy
import ServiceLifecycle

/// The options every long-running command (`run`, `watch`, `policy`) takes alike.
struct GuardOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Configuration file (YAML).", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Write events (JSON lines) to this file, - for standard output, \"\" for nowhere.", valueName: "path|-"))
    var events: String?

    @Option(name: .long, help: ArgumentHelp("State file (SQLite) for bans, attempts and alerts; \"\" keeps them in memory only.", valueName: "path"))
    var state: String?

    @Option(name: .long, help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical.", valueName: "level"))
    var logLevel: String = "info"

    /// The configuration file (or the defaults), then the command's own flags, then --events
    /// and --state.
    func loadConfiguration(_ flags: [CommandSupport.Flag] = []) throws -> GuardConfiguration {
        var flags = flags
        if let events = self.events { flags.append(("--events", "events.path", .scalar(events))) }
        if let state = self.state { flags.append(("--state", "state.path", .scalar(state))) }
        return try CommandSupport.loadConfiguration(self.config, flags: flags)
    }
}

enum CommandSupport {
    /// Logs to standard error at `levelText`; the logger to use.
    static func bootstrapLogging(_ levelText: String) throws -> Logger {
        guard let level = Logger.Level(rawValue: levelText) else {
            throw ValidationError("--log-level: unknown level \"\(levelText)\"")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "smtpguard")
    }

    /// The configuration file, or the defaults when none is given.
    static func loadFile(_ path: String?) throws -> GuardConfiguration {
        guard let path else { return GuardConfiguration() }
        do {
            return try ConfigurationLoader.load(path: path)
        } catch let failure as ConfigurationLoader.Failure {
            throw StartupError("invalid configuration:\n\(failure)")
        }
    }

    /// A command-line flag that overrides a configuration key: its name, the key, its value.
    typealias Flag = (flag: String, key: String, value: ConfigValue)

    /// The configuration file (or the defaults), then the flags given; a problem is told with
    /// the flag's name when a flag caused it.
    static func loadConfiguration(_ path: String?, flags: [Flag]) throws -> GuardConfiguration {
        let configuration = try self.loadFile(path)
        let (merged, issues) = GuardConfiguration.from(values: flags.map { ($0.key, $0.value, nil) }, file: "command line", base: configuration)
        guard issues.isEmpty else {
            let names = Dictionary(flags.map { ($0.key, $0.flag) }, uniquingKeysWith: { first, _ in first })
            throw ValidationError(issues.map { "\(names[$0.key] ?? $0.key): \($0.message)" }.joined(separator: "\n"))
        }
        return merged
    }

    /// Runs `body` with the configured state: PostgreSQL (`state.url`: its connection pool
    /// runs beside `body`, the schema is brought up to date first), the SQLite file, or nil
    /// (memory only). A state that cannot be used stops the start.
    static func withState<T>(
        _ configuration: GuardConfiguration, logger: Logger, _ body: ((store: any StateStore, name: String)?) async throws -> T
    ) async throws -> T {
        guard !configuration.state.url.isEmpty else { return try await body(try await RunCommand.openStore(configuration, logger: logger)) }
        let store: PostgresStateStore
        do {
            store = try PostgresStateStore(url: configuration.state.url, guardID: RunCommand.guardID, timeout: configuration.state.timeout, logger: logger)
        } catch {
            throw StartupError("\(error)")
        }
        return try await store.running {
            do {
                let (before, after) = try await store.migrate()
                if before != after { logger.notice("state: database schema \(before) → \(after)", metadata: ["state": .string(store.url)]) }
            } catch {
                throw StartupError("\(error)")
            }
            return try await body((store, store.url))
        }
    }

    /// Rebuilds the engine (and the admin statistics) from the state; a state that cannot be
    /// read is closed and stops the start.
    static func restore(
        _ guardEngine: Guard, from store: (store: any StateStore, name: String)?, configuration: GuardConfiguration, admin: AdminComponents,
        clock: any GuardClock, logger: Logger
    ) async throws {
        guard let store else { return }
        do {
            let state = try await RunCommand.restore(guardEngine, from: store, configuration: configuration, clock: clock, logger: logger)
            await admin.absorb(attempts: state.attempts, store: store.store, logger: logger)
        } catch {
            await store.store.close()
            throw error
        }
    }

    /// The process's metrics registry (swift-metrics bootstrapped into it on first use).
    static let metrics: MetricsRegistry = {
        let registry = MetricsRegistry()
        registry.bootstrapSystem()
        return registry
    }()

    /// Runs the services until they stop, then shuts the event loops down and closes the state,
    /// whatever stopped them; the error that did, if any.
    static func runUntilStopped(_ group: ServiceGroup, eventLoops: any EventLoopGroup, store: (any StateStore)?) async -> (any Error)? {
        var failure: (any Error)?
        do {
            try await group.run()
        } catch {
            failure = error
        }
        try? await eventLoops.shutdownGracefully()
        await store?.close()
        return failure
    }

    /// The admin server and alert delivery, and the trusted networks; a problem (the token
    /// file, the trusted networks in the state) closes the state and stops the start.
    static func adminServices(
        _ admin: AdminComponents, guardEngine: Guard, store: (store: any StateStore, name: String)?, logger: Logger
    ) async throws -> (services: [ServiceGroupConfiguration.ServiceConfiguration], trusted: TrustedNetworkBook) {
        do {
            return try await admin.services(guardEngine: guardEngine, store: store?.store, logger: logger)
        } catch {
            await store?.store.close()
            throw StartupError("\(error)")
        }
    }

    /// The services every long-running command has: SIGHUP reloads, ban expiry, and with a
    /// state, its flushing and (on PostgreSQL) the cluster sync of bans and trusted networks.
    static func stateServices(
        eventLog: EventLogWriter?, tls: TLSContextStore?, guardEngine: Guard, writer: StoreWriter?, store: (any StateStore)?,
        trusted: TrustedNetworkBook, configuration: GuardConfiguration, clock: any GuardClock, logger: Logger
    ) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: ReloadService(eventLog: eventLog, tls: tls, logger: logger)),
            .init(service: BanExpiryService(guardEngine: guardEngine)),
        ]
        if let writer {
            services.append(.init(service: StoreFlushService(
                writer: writer, interval: configuration.state.flushInterval, retention: configuration.state.retention, clock: clock, logger: logger)))
        }
        if let cluster = store as? PostgresStateStore {
            services.append(.init(service: ClusterSyncService(store: cluster, guardEngine: guardEngine, trusted: trusted, logger: logger)))
        }
        return services
    }

    /// The engine, and the sink every source records into: the operator's log, then the event
    /// log, the state (through the returned writer), any `extra` sink, and the admin side
    /// (metrics, the API's feed and statistics, alert delivery).
    static func makeGuard(
        _ configuration: GuardConfiguration, eventLog: EventLogWriter?, store: (store: any StateStore, name: String)?, extra: [any EventSink] = [],
        clock: any GuardClock, logger: Logger
    ) -> (guardEngine: Guard, sink: any EventSink, writer: StoreWriter?, admin: AdminComponents) {
        let writer = store.map { StoreWriter(store: $0.store) }
        let admin = AdminComponents(configuration: configuration, registry: self.metrics, clock: clock, logger: logger)
        var sinks: [any EventSink] = []
        if let eventLog { sinks.append(eventLog) }
        if let writer { sinks.append(writer) }
        let sink = LoggingEventSink(next: FanOutEventSink(sinks + extra + admin.sinks), logger: logger)
        return (Guard(policy: configuration.policy, clock: clock, events: sink), sink, writer, admin)
    }

    /// The event log of `events.path`, or nil when it is off.
    static func openEventLog(_ configuration: GuardConfiguration) throws -> EventLogWriter? {
        guard !configuration.events.path.isEmpty else { return nil }
        do {
            return try EventLogWriter(path: configuration.events.path)
        } catch {
            throw StartupError("\(error)")
        }
    }

    /// The Dovecot and Postfix policy servers the configuration asks for (none when neither
    /// dovecot_policy.listen nor postfix_policy.listen is set). They stop the group if they
    /// cannot listen.
    static func policyServices(
        configuration: GuardConfiguration, guardEngine: Guard, events: any EventSink, group: any EventLoopGroup, logger: Logger
    ) throws -> [ServiceGroupConfiguration.ServiceConfiguration] {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        do {
            if !configuration.dovecotPolicy.listen.isEmpty {
                let policy = DovecotPolicy(guardEngine: guardEngine, events: events, configuration: configuration.dovecotPolicy)
                if configuration.dovecotPolicy.hashNonce.isEmpty {
                    logger.notice("dovecot_policy.hash_nonce is not set: default passwords are not recognised in Dovecot's requests")
                }
                services.append(.init(
                    service: try DovecotPolicyService(configuration: configuration.dovecotPolicy, policy: policy, group: group, logger: logger),
                    failureTerminationBehavior: .gracefullyShutdownGroup))
            }
            if !configuration.postfixPolicy.listen.isEmpty {
                let policy = PostfixPolicy(guardEngine: guardEngine, configuration: configuration.postfixPolicy)
                services.append(.init(
                    service: try PostfixPolicyService(configuration: configuration.postfixPolicy, answer: policy.answer, group: group, logger: logger),
                    failureTerminationBehavior: .gracefullyShutdownGroup))
            }
        } catch {
            throw StartupError(error.description)
        }
        return services
    }
}
