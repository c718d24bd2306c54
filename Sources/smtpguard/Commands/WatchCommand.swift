// `smtpguard watch`: the log watcher. Reads mail logs (files, rotating directories, standard
// input, journald), feeds the engine the proxy uses, and enforces its bans in the firewall.
// `--check FILE` tells how a log's lines match the configured formats.

import ArgumentParser
import Foundation
import AdminServer
import GuardCore
import GuardStore
import LogWatch
import Logging
import NIOPosix
import ServiceLifecycle

struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Watch mail logs for AUTH failures and ban the attackers in the firewall.",
        discussion: """
            Sources come from watch.sources in the configuration (see `smtpguard config defaults`), \
            each "FORMAT[,FORMAT…] file:PATH | dir:DIRECTORY/PATTERN | stdin | journald[:unit=NAME,identifier=NAME]" \
            with formats postfix, dovecot, exim, exchange, events (the guard's own event log) and patterns \
            (watch.patterns); --source adds one. A journald source with several filters reads what any \
            of them selects (Debian 12: "postfix journald:unit=postfix@-.service"). \
            Files are followed across rotation, truncation and re-creation; positions are saved in \
            watch.positions so that a restart resumes where the last run stopped. A source that reads \
            nothing for watch.silence_alert raises an alert. \
            Bans go to the state (shared with proxies on PostgreSQL), the event log, the firewall \
            (firewall.backend: nftables, ipset, iptables, command or none) and the ban list \
            (firewall.banlist_listen); every firewall.check_interval the firewall is read back and a \
            table flushed away (systemctl restart nftables) is made again with the bans in force. \
            Trusted networks are never banned.

            `smtpguard watch --check FILE` reads FILE once with the configured formats (or --format) \
            and prints how many lines each rule matched and the lines that look like AUTH failures \
            but matched nothing; it exits 1 when there are such lines, so a changed log format is noticed.
            """
    )

    @OptionGroup var options: GuardOptions

    @Option(name: .long, help: ArgumentHelp("Add a source, as in watch.sources (repeatable).", valueName: "source"))
    var source: [String] = []

    @Option(name: .long, help: ArgumentHelp("Check how the lines of FILE match, then exit (- for standard input).", valueName: "file"))
    var check: String?

    @Option(name: .long, help: ArgumentHelp("Formats for --check, comma-separated (default: those of the configured sources, or all built-in).", valueName: "formats"))
    var format: String?

    func run() async throws {
        var configuration = try self.options.loadConfiguration()
        if let check = self.check {
            let formats = try Self.formats(self.format, configuration: configuration)
            throw ExitCode(try Self.check(path: check, formats: formats, patterns: configuration.watch.patterns))
        }
        let logger = try CommandSupport.bootstrapLogging(self.options.logLevel)
        for text in self.source {
            do {
                configuration.watch.sources.append(try WatchSource(parsing: text))
            } catch {
                throw ValidationError("--source: \(error.message)")
            }
        }
        guard !configuration.watch.sources.isEmpty else {
            throw ValidationError("nothing to watch: give watch.sources in the configuration or --source, e.g. --source \"postfix file:/var/log/mail.log\"")
        }
        if configuration.watch.sources.contains(where: { $0.formats.contains("patterns") }) && configuration.watch.patterns.isEmpty {
            throw ValidationError("a source uses the \"patterns\" format: give watch.patterns in the configuration")
        }

        let eventSink = try CommandSupport.openEventLog(configuration)
        defer { eventSink?.flush() }
        let clock = SystemClock()
        try await CommandSupport.withState(configuration, logger: logger) { store in
            let firewallQueue = FirewallQueue()
            let (guardEngine, sink, writer, admin) = CommandSupport.makeGuard(
                configuration, eventLog: eventSink, store: store, extra: configuration.firewall.backend != .none ? [firewallQueue] : [], clock: clock, logger: logger)
            try await CommandSupport.restore(guardEngine, from: store, configuration: configuration, admin: admin, clock: clock, logger: logger)
            let (adminServices, trusted) = try await CommandSupport.adminServices(admin, guardEngine: guardEngine, store: store, logger: logger)
            let feeder = EvidenceFeeder(guardEngine: guardEngine, events: sink)
            let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            var services = adminServices + CommandSupport.stateServices(
                eventLog: eventSink, tls: nil, guardEngine: guardEngine, writer: writer, store: store?.store, trusted: trusted,
                configuration: configuration, clock: clock, logger: logger)
            if configuration.firewall.backend != .none {
                services.append(.init(
                    service: FirewallService(runner: FirewallRunner(configuration: configuration.firewall), queue: firewallQueue, guardEngine: guardEngine, logger: logger),
                    failureTerminationBehavior: .gracefullyShutdownGroup))
            } else if configuration.firewall.banlistListen.isEmpty {
                logger.notice("firewall.backend is none: bans are kept in the state\(store == nil ? " (memory only)" : "") and the event log, for proxies and policy services to enforce")
            }
            if let address = HostPort(configuration.firewall.banlistListen) {
                services.append(.init(
                    service: BanListService(
                        address: address, text: { banListText(guardEngine.activeBans(), policy: guardEngine.policy) }, logger: logger),
                    failureTerminationBehavior: .gracefullyShutdownGroup))
            }
            services += try CommandSupport.policyServices(configuration: configuration, guardEngine: guardEngine, events: sink, group: eventLoops, logger: logger)
            services.append(.init(
                service: WatchService(configuration: configuration.watch, feeder: feeder, events: sink, clock: clock, logger: logger),
                successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup))
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            logger.info(
                "smtpguard \(SMTPGuardCommand.version) watching",
                metadata: [
                    "sources": .string(configuration.watch.sources.map(\.description).joined(separator: "; ")),
                    "firewall": .string(configuration.firewall.backend.rawValue),
                    "events": .string(configuration.events.path.isEmpty ? "off" : configuration.events.path),
                ])
            let failure = await CommandSupport.runUntilStopped(group, eventLoops: eventLoops, store: store?.store)
            let counts = feeder.counts
            logger.info("watcher stopped: \(counts.attempts) attempts fed, \(counts.merged) duplicate lines merged")
            if let failure {
                if let startup = failure as? StartupError { throw startup }
                throw StartupError("\(failure)")
            }
        }
    }

    /// Formats named by --format, or those of the configured sources, or every built-in one.
    static func formats(_ flag: String?, configuration: GuardConfiguration) throws -> [String] {
        if let flag {
            let names = flag.split(separator: ",").map { String($0).lowercased() }
            for name in names where !LogFormats.names.contains(name) {
                throw ValidationError("--format: unknown format \"\(name)\" (known: \(LogFormats.names.joined(separator: ", ")))")
            }
            if names.contains("patterns") && configuration.watch.patterns.isEmpty {
                throw ValidationError("--format patterns: give watch.patterns in the configuration")
            }
            return names
        }
        var names: [String] = []
        for source in configuration.watch.sources { for name in source.formats where !names.contains(name) { names.append(name) } }
        return names.isEmpty ? LogFormats.builtIn + (configuration.watch.patterns.isEmpty ? [] : ["patterns"]) : names
    }

    /// Prints the per-rule counts and the suspects of one file; returns the exit status.
    static func check(path: String, formats: [String], patterns: [String]) throws -> Int32 {
        var replayer = try Replayer(policy: GuardPolicy(), formats: formats, patterns: patterns, now: SystemClock().now())
        do {
            try replayer.read(path: path)
        } catch {
            throw StartupError("\(error)")
        }
        let report = replayer.report(top: 0)
        print("\(path): \(report.lines) lines, formats \(formats.joined(separator: ", "))")
        for (rule, count) in report.rules.sorted(by: { $0.key < $1.key }) { print("  \(rule.padding(toLength: 34, withPad: " ", startingAt: 0)) \(count)") }
        let matched = report.rules.values.reduce(0, +)
        print("  \("matched lines".padding(toLength: 34, withPad: " ", startingAt: 0)) \(matched)")
        print("  \("unmatched suspects".padding(toLength: 34, withPad: " ", startingAt: 0)) \(report.suspectCount)")
        if report.truncatedLines > 0 { print("  \("lines cut at the length limit".padding(toLength: 34, withPad: " ", startingAt: 0)) \(report.truncatedLines)") }
        if report.suspectCount > 0 {
            print("\nLines that look like AUTH failures but match no rule (a log format may have changed; add a watch.patterns entry or report it):")
            for line in report.suspects { print("  \(line.logSafe)") }
            return 1
        }
        return 0
    }
}
