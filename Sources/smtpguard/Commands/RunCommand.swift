// `smtpguard run`: the SMTP proxy in front of a mail server.

import ArgumentParser
import Foundation
import GuardCore
import GuardStore
import Logging
import NIOCore
import NIOPosix
import SMTPProxy
import SMTPWire
import ServiceLifecycle

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the SMTP proxy in front of the mail server.",
        discussion: """
            Reads the configuration file when one is given (see `smtpguard config defaults`), \
            then applies the flags, which override it. Without a file the built-in defaults apply: \
            listen on 127.0.0.1:2525, backend 127.0.0.1:25, events as JSON lines on standard output, \
            bans and counts kept in ./smtpguard.db (restored at the next start). \
            Stops gracefully on SIGTERM or SIGINT: no new connections, open sessions get time to finish. \
            SIGHUP reopens the event log (for logrotate) and reloads the TLS certificate and key \
            (open sessions keep theirs; a file that cannot be used leaves the previous one in place). \
            `--events ""` turns the event log off.
            """
    )

    @OptionGroup var options: GuardOptions

    @Option(name: .long, help: ArgumentHelp("Listen on HOST:PORT (repeatable; replaces the configured list).", valueName: "host:port"))
    var listen: [String] = []

    @Option(name: .long, help: ArgumentHelp("The mail server to protect, HOST:PORT.", valueName: "host:port"))
    var backend: String?

    /// Raises the soft RLIMIT_NOFILE toward what smtp.max_connections needs, and says so, with
    /// the numbers, when even the hard limit is too low.
    static func raiseDescriptorLimit(maxConnections: Int, logger: Logger) {
        guard let (plan, error) = DescriptorLimit.apply(maxConnections: maxConnections) else {
            logger.warning("cannot read the open-file limit (RLIMIT_NOFILE)")
            return
        }
        if let error {
            logger.warning("cannot raise the soft open-file limit (RLIMIT_NOFILE) from \(plan.soft) to \(plan.target): \(error)")
        } else if let (warning, text) = plan.message {
            if warning { logger.warning("\(text)") } else { logger.info("\(text)") }
        }
    }

    func run() async throws {
        let logger = try CommandSupport.bootstrapLogging(self.options.logLevel)
        let configuration = try self.loadConfiguration()

        let eventSink = try CommandSupport.openEventLog(configuration)
        defer { eventSink?.flush() }
        let clock = SystemClock()
        // Everything that can stop the start comes before the state file is opened, or closes it.
        let (tlsStore, backendTLS) = try Self.loadTLS(configuration.proxy, logger: logger)
        try await CommandSupport.withState(configuration, logger: logger) { store in
            let (guardEngine, sink, writer, admin) = CommandSupport.makeGuard(configuration, eventLog: eventSink, store: store, clock: clock, logger: logger)
            try await CommandSupport.restore(guardEngine, from: store, configuration: configuration, admin: admin, clock: clock, logger: logger)
            let (adminServices, trusted) = try await CommandSupport.adminServices(admin, guardEngine: guardEngine, store: store, logger: logger)
            let hasher = PasswordHasher.random(bits: configuration.policy.credentials.hashBits)
            let proxyContext = ProxyContext(
                configuration: configuration.proxy,
                session: SessionConfiguration(configuration.proxy, hasher: hasher),
                guardEngine: guardEngine, events: sink,
                registry: ConnectionRegistry(maxTotal: configuration.proxy.maxConnections, maxPerClient: configuration.proxy.maxConnectionsPerIP),
                logger: logger,
                connector: TCPBackendConnector(implicitTLS: configuration.proxy.backendTLS == .tls ? backendTLS : nil),
                tls: tlsStore, backendTLS: backendTLS,
                penaltyMonitor: configuration.proxy.identity == .none
                    ? BackendPenaltyMonitor(backend: configuration.proxy.backend.description, events: sink, logger: logger) : nil)
            for warning in configuration.warnings { logger.warning("\(warning.key): \(warning.message)") }
            Self.raiseDescriptorLimit(maxConnections: configuration.proxy.maxConnections, logger: logger)
            let threads = configuration.proxy.threads > 0 ? configuration.proxy.threads : System.coreCount
            let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: threads)
            let proxy = SMTPProxyService(context: proxyContext, group: eventLoops)
            let services = CommandSupport.stateServices(
                eventLog: eventSink, tls: tlsStore, guardEngine: guardEngine, writer: writer, store: store?.store, trusted: trusted,
                configuration: configuration, clock: clock, logger: logger)
            let policyServices = try CommandSupport.policyServices(
                configuration: configuration, guardEngine: guardEngine, events: sink, group: eventLoops, logger: logger)
            let group = ServiceGroup(
                configuration: .init(
                    services: services + policyServices + adminServices + [
                        .init(service: proxy, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
                    ],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger))
            logger.info(
                "smtpguard \(SMTPGuardCommand.version) starting",
                metadata: [
                    "listen": .string(configuration.proxy.listen.map(\.description).joined(separator: ",")),
                    "listen_tls": .string(configuration.proxy.listenTLS.map(\.description).joined(separator: ",")),
                    "backend_tls": .string(configuration.proxy.backendTLS.rawValue),
                    "backend": .string(configuration.proxy.backend.description),
                    "identity": .string(configuration.proxy.identity.rawValue),
                    "events": .string(configuration.events.path.isEmpty ? "off" : configuration.events.path),
                ])
            if let failure = await CommandSupport.runUntilStopped(group, eventLoops: eventLoops, store: store?.store) {
                throw (failure as? ProxyStartError).map { StartupError($0.message) } ?? failure
            }
        }
    }

    /// The state file, created and migrated if new; nil when state is kept in memory only. A
    /// file that cannot be used stops the start: starting empty would forget every ban.
    /// (PostgreSQL: CommandSupport.withState.)
    static func openStore(_ configuration: GuardConfiguration, logger: Logger) async throws -> (store: any StateStore, name: String)? {
        let path = configuration.state.path
        guard !path.isEmpty else {
            logger.warning("state.path is empty: bans and counts live in memory only and are lost on restart")
            return nil
        }
        do {
            return (try await SQLiteStateStore.open(path: path, logger: logger), path)
        } catch {
            throw StartupError("\(error)")
        }
    }

    /// Rebuilds the engine from the state file before the first connection is accepted.
    /// This process among the guards of a cluster: host name and process id.
    static let guardID = "\(ProxyConfiguration().effectiveHostname):\(getpid())"

    @discardableResult
    static func restore(
        _ guardEngine: Guard, from opened: (store: any StateStore, name: String), configuration: GuardConfiguration, clock: any GuardClock, logger: Logger
    ) async throws -> StoredState {
        let store = opened.store
        let began = ContinuousClock.now
        let now = clock.now()
        let state: StoredState
        do {
            state = try await store.load(
                now: now, since: now + .nanoseconds(-configuration.policy.longWindow.nanosecondsClamped),
                successesSince: now + .nanoseconds(-configuration.policy.knownPlaceDuration.nanosecondsClamped),
                bansSince: now + .nanoseconds(-configuration.policy.bans.rememberOffenses.nanosecondsClamped))
        } catch {
            throw StartupError("state \(opened.name): cannot be read (\(error))")
        }
        guardEngine.restore(attempts: state.attempts, activeBans: state.bans, banHistory: state.banHistory)
        logger.info(
            "state restored",
            metadata: [
                "state": .string(opened.name), "bans": .string("\(state.bans.count)"), "attempts": .string("\(state.attempts.count)"),
                "took": .string((ContinuousClock.now - began).compactText),
            ])
        return state
    }

    /// The guard's certificate and the backend TLS context; a file that cannot be used stops
    /// the start with its name and what is wrong.
    static func loadTLS(_ proxy: ProxyConfiguration, logger: Logger) throws -> (TLSContextStore?, BackendTLS?) {
        var store: TLSContextStore?
        if proxy.tls.isConfigured {
            do {
                store = try TLSContextStore(settings: proxy.tls)
            } catch {
                throw StartupError("\(error)")
            }
            CertificateLog.loaded(store!.summary, settings: proxy.tls, logger: logger)
        } else if proxy.requireTLS {
            logger.warning(
                "no TLS certificate configured (tls.certificate) and auth.require_tls is on: every AUTH will be refused with 538 5.7.11; configure a certificate, or set auth.require_tls to false behind a TLS-terminating proxy"
            )
        }
        var backendTLS: BackendTLS?
        if proxy.backendTLS != .none {
            do {
                backendTLS = try BackendTLS(proxy)
            } catch {
                throw StartupError("\(error)")
            }
            if !proxy.backendTLSVerify {
                logger.warning("backend.tls_verify is off: the backend's certificate is not checked")
            }
        }
        return (store, backendTLS)
    }

    /// The file (if any), then the flags.
    func loadConfiguration() throws -> GuardConfiguration {
        var flags: [CommandSupport.Flag] = []
        if !self.listen.isEmpty { flags.append(("--listen", "listen", .list(self.listen))) }
        if let backend = self.backend { flags.append(("--backend", "backend.address", .scalar(backend))) }
        return try self.options.loadConfiguration(flags)
    }
}

/// A reason the guard cannot start, told without the usage text (the flags were fine).
struct StartupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
