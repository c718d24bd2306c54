// `smtpguard trusted list|add|remove`: the networks a running guard never bans, through its
// admin API (AdminClient). Those of the configuration file are listed but changed only there.

import AdminServer
import ArgumentParser
import Audit

struct TrustedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trusted", abstract: "Networks a running guard never bans, tarpits or locks out.",
        subcommands: [List.self, Add.self, Remove.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Trusted networks: the configuration file's and those added here.")
        @OptionGroup var options: AdminOptions

        func run() async throws {
            let client = try self.options.client()
            let answer = try await client.trusted()
            if self.options.json { return print(answer.text, terminator: "") }
            let networks = try answer.value().networks
            if networks.isEmpty { return print("no trusted networks") }
            print(TextTable.render(
                ["NETWORK", "FROM", "ADDED", "COMMENT"],
                networks.map { [$0.network, $0.origin, AdminText.time($0.added), $0.comment] }))
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Trust a network from now on (kept in the state across restarts).")
        @OptionGroup var options: AdminOptions
        @Argument(help: "An address or network: 192.0.2.0/24, 2001:db8::/48.") var network: String
        @Option(help: "Why (shown in the list).") var comment = ""

        func run() async throws {
            let client = try self.options.client()
            let answer = try await client.addTrusted(TrustedNetworkRequest(network: self.network, comment: self.comment))
            if self.options.json { return print(answer.text, terminator: "") }
            let entry = try answer.value()
            print(entry.origin == "configuration" ? "\(entry.network) is already trusted by the configuration file" : "trusted \(entry.network)")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop trusting a network added with `trusted add`.")
        @OptionGroup var options: AdminOptions
        @Argument(help: "The network, as `trusted list` shows it.") var network: String

        func run() async throws {
            let client = try self.options.client()
            let answer = try await client.removeTrusted(self.network)
            if self.options.json { return print(answer.text, terminator: "") }
            print("no longer trusted: \(self.network)")
        }
    }
}
