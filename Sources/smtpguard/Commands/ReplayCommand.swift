// `smtpguard replay FILE…`: reads logs offline and reports what happened and what the guard,
// with the configured policy, would have done.

import ArgumentParser
import Foundation
import GuardCore
import LogWatch

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Read mail logs or Windows Security events offline and report the attack and the bans the policy would have issued.",
        discussion: """
            Reads each FILE (- for standard input). What a file is, is told by its first bytes: a \
            text log is read with the formats of --format, or of the configured watch.sources, or \
            every built-in one (postfix, dovecot, exim, exchange, events, windows); Windows Security \
            events are read as an .evtx file (Event Viewer "Save All Events As", wevtutil epl), Event \
            XML (wevtutil qe Security /f:xml, Event Viewer "Save as XML") or Winlogbeat / NXLog JSON \
            lines. A file of any other kind (a packet capture, a compressed or UTF-16 file, a \
            database) is an error that says what it looked like.
            The attempts run through the engine with the configured policy, in the order of their \
            times. Reports, per file, what it was and how many attempts it held, then attempts and \
            failures, attacking addresses and networks, targeted usernames and those of the seed \
            lists, accounts that logged in from an address that had failed many times (likely \
            compromised), the bans that would have been issued and when, and for Windows events a \
            logon summary per account and per source (logon types, why logons failed, lockouts). \
            Nothing is written: no state, no firewall. --json for programs.
            """
    )

    @Argument(help: ArgumentHelp("Log files or Windows event logs to read (- for standard input; not for .evtx).", valueName: "file"))
    var files: [String]

    @Option(name: .long, help: ArgumentHelp("Configuration file (YAML) for the policy and patterns.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Formats, comma-separated.", valueName: "formats"))
    var format: String?

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("How many top addresses, networks and usernames to list.", valueName: "n"))
    var top = 10

    func run() throws {
        let configuration = try CommandSupport.loadFile(self.config)
        let formats = try WatchCommand.formats(self.format, configuration: configuration)
        var replayer = try Replayer(policy: configuration.policy, formats: formats, patterns: configuration.watch.patterns, now: SystemClock().now())
        for file in self.files {
            do {
                try replayer.read(path: file)
            } catch {
                throw StartupError("\(error)")
            }
        }
        let report = replayer.report(top: max(0, self.top))
        print(self.json ? report.json : report.text, terminator: self.json ? "\n" : "")
    }
}
