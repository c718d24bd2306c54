// The `smtpguard` command line.

import ArgumentParser
import GuardCore

@main
struct SMTPGuardCommand: AsyncParsableCommand {
    static let version = SMTPGuardVersion.current

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
            CheckPasswordCommand.self, AuditPasswordsCommand.self, AuditCommand.self, DNSBLCommand.self, ReplayCommand.self, ConfigCommand.self, DatabaseCommand.self,
        ]
    )
}
