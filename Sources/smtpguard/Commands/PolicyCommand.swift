// `smtpguard policy`: the policy servers alone, for a mail stack that keeps its own SMTP
// front: Dovecot asks before and after each authentication (this covers SMTP AUTH through
// Postfix's Dovecot SASL), Postfix asks at each SMTP stage (bans, sending limits).

import ArgumentParser
import GuardCore
import GuardStore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Serve Dovecot's auth policy and Postfix's policy delegation (no proxy).",
        discussion: """
            Starts the servers the configuration names: dovecot_policy.listen (HTTP, for Dovecot's \
            auth_policy_server_url; requests must carry dovecot_policy.api_header or basic_auth) and \
            postfix_policy.listen (TCP or unix:/path, for check_policy_service in Postfix's restrictions). \
            Both decide with the same engine, state and event log as `run` and `watch`, which also start \
            them when configured. Dovecot's answers: -1 rejects, 0 allows, N delays N seconds (the tarpit). \
            Postfix's: the ban action for banned clients, DEFER_IF_PERMIT past a sending limit, DUNNO otherwise. \
            Stops gracefully on SIGTERM or SIGINT; SIGHUP reopens the event log.
            """
    )

    @OptionGroup var options: GuardOptions

    @Option(name: .long, help: ArgumentHelp("Listen for Dovecot on HOST:PORT (replaces dovecot_policy.listen).", valueName: "host:port"))
    var dovecot: String?

    @Option(name: .long, help: ArgumentHelp("Listen for Postfix on HOST:PORT or unix:/path (repeatable; replaces postfix_policy.listen).", valueName: "address"))
    var postfix: [String] = []

    func run() async throws {
        let configuration = try self.loadConfiguration()
        guard !configuration.dovecotPolicy.listen.isEmpty || !configuration.postfixPolicy.listen.isEmpty else {
            throw ValidationError("nothing to serve: set dovecot_policy.listen or postfix_policy.listen in the configuration, or give --dovecot or --postfix")
        }
        let logger = try CommandSupport.bootstrapLogging(self.options.logLevel)
        let eventSink = try CommandSupport.openEventLog(configuration)
        defer { eventSink?.flush() }
        let clock = SystemClock()
        try await CommandSupport.withState(configuration, logger: logger) { store in
            let (guardEngine, sink, writer, admin) = CommandSupport.makeGuard(configuration, eventLog: eventSink, store: store, clock: clock, logger: logger)
            try await CommandSupport.restore(guardEngine, from: store, configuration: configuration, admin: admin, clock: clock, logger: logger)
            let (adminServices, trusted) = try await CommandSupport.adminServices(admin, guardEngine: guardEngine, store: store, logger: logger)
            let threads = configuration.proxy.threads > 0 ? configuration.proxy.threads : System.coreCount
            let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: threads)
            var services = adminServices + CommandSupport.stateServices(
                eventLog: eventSink, tls: nil, guardEngine: guardEngine, writer: writer, store: store?.store, trusted: trusted,
                configuration: configuration, clock: clock, logger: logger)
            do {
                services += try CommandSupport.policyServices(configuration: configuration, guardEngine: guardEngine, events: sink, group: eventLoops, logger: logger)
            } catch {
                try? await eventLoops.shutdownGracefully()
                await store?.store.close()
                throw error
            }
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            logger.info(
                "smtpguard \(SMTPGuardCommand.version) serving policy",
                metadata: [
                    "dovecot": .string(configuration.dovecotPolicy.listen.isEmpty ? "off" : configuration.dovecotPolicy.listen),
                    "postfix": .string(configuration.postfixPolicy.listen.isEmpty ? "off" : configuration.postfixPolicy.listen.joined(separator: ",")),
                    "events": .string(configuration.events.path.isEmpty ? "off" : configuration.events.path),
                ])
            if let failure = await CommandSupport.runUntilStopped(group, eventLoops: eventLoops, store: store?.store) {
                throw StartupError("\(failure)")
            }
        }
    }

    /// The file (if any), then the flags.
    func loadConfiguration() throws -> GuardConfiguration {
        var flags: [CommandSupport.Flag] = []
        if let dovecot = self.dovecot { flags.append(("--dovecot", "dovecot_policy.listen", .scalar(dovecot))) }
        if !self.postfix.isEmpty { flags.append(("--postfix", "postfix_policy.listen", .list(self.postfix))) }
        return try self.options.loadConfiguration(flags)
    }
}
