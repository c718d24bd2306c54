// `smtpguard bans list|add|remove`: the bans and locks of a running guard, through its admin
// API (AdminClient; the address and token as AdminOptions finds them).

import AdminServer
import ArgumentParser
import Audit
import GuardCore

struct BansCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bans", abstract: "List, add and lift bans on a running guard (its admin API).",
        subcommands: [List.self, Add.self, Remove.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The bans and locks in force, newest first.")
        @OptionGroup var options: AdminOptions
        @Option(help: "Only this scope: ip, prefix or username.") var scope: String?
        @Option(help: "Only keys containing this text.") var key: String?
        @Option(help: "Only this reason (e.g. pair_limit, manual).") var reason: String?
        @Option(help: "At most this many (1-1000).") var limit = 100

        func run() async throws {
            let client = try self.options.client()
            let answer = try await client.bans(scope: self.scope, key: self.key, reason: self.reason, limit: self.limit)
            if self.options.json { return print(answer.text, terminator: "") }
            let list = try answer.value()
            if list.bans.isEmpty { return print("no bans in force") }
            print(TextTable.render(
                ["SCOPE", "KEY", "REASON", "SINCE", "UNTIL", "OFFENCE"],
                list.bans.map { [$0.scope, $0.key, $0.reason, AdminText.time($0.since), AdminText.time($0.until), String($0.offense)] }))
            if list.total > list.bans.count { print("(\(list.bans.count) of \(list.total); --limit for more)") }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ban an address or network, or lock a username.")
        @OptionGroup var options: AdminOptions
        @Argument(help: "ip, prefix or username.") var scope: String
        @Argument(help: "The address (192.0.2.7), network (192.0.2.0/24) or username.") var key: String
        @Option(help: "How long: 90s, 30m, 2h, 7d …") var duration: String
        @Option(help: "Reason recorded with the ban.") var reason = "manual"

        func run() async throws {
            guard let duration = FlexibleDuration(self.duration) else { throw ValidationError("--duration: expected a duration such as 30m, 2h or 7d") }
            let client = try self.options.client()
            let answer = try await client.addBan(BanRequest(scope: self.scope, key: self.key, duration: duration, reason: self.reason))
            if self.options.json { return print(answer.text, terminator: "") }
            let ban = try answer.value()
            print("banned \(ban.scope) \(ban.key) until \(AdminText.time(ban.until)) (\(ban.reason))")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift a ban or lock now.")
        @OptionGroup var options: AdminOptions
        @Argument(help: "ip, prefix or username.") var scope: String
        @Argument(help: "The address, network or username, as `bans list` shows it.") var key: String

        func run() async throws {
            let client = try self.options.client()
            let answer = try await client.liftBan(scope: self.scope, key: self.key)
            if self.options.json { return print(answer.text, terminator: "") }
            let ban = try answer.value()
            print("lifted the ban on \(ban.scope) \(ban.key)")
        }
    }
}
