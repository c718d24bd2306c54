// The `smtpguard` command line.

import ArgumentParser
import Foundation
import GuardCore

@main
struct SMTPGuardCommand: AsyncParsableCommand {
    static let version = SMTPGuardVersion.current

    /// SIGHUP is held off from the first moment: its default action ends the process, and a
    /// `systemctl reload` (or logrotate's postrotate) that comes before the reload handler is
    /// in place would stop the guard, which systemd counts as a clean exit and does not
    /// restart. The reload service traps it once the services run.
    static func main() async {
        signal(SIGHUP, SIG_IGN)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "smtpguard",
        abstract: "Stops SMTP AUTH password guessing in front of a mail server.",
        discussion: """
            SMTPGuard sits in front of your mail server (Postfix, Exim, Exchange …) as an SMTP proxy, \
            sees every AUTH attempt, and stops password-guessing bots: per-address, per-network and \
            per-username limits, tarpits, escalating bans, and a firewall for default credentials.

            Start with `smtpguard run` (defaults: listen on 127.0.0.1:2525, backend 127.0.0.1:25) \
            and `smtpguard config defaults` for every setting.
            """,
        version: version,
        subcommands: [
            RunCommand.self, WatchCommand.self, PolicyCommand.self, BansCommand.self, EventsCommand.self, StatsCommand.self, TrustedCommand.self,
            CheckPasswordCommand.self, AuditPasswordsCommand.self, AuditCommand.self, DNSBLCommand.self, ReplayCommand.self, WindowsCommand.self, ConfigCommand.self, DatabaseCommand.self,
        ]
    )
}
