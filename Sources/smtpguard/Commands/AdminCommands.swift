// `smtpguard bans`, `events`, `stats` and `trusted`: a running guard's admin API from the
// command line. The guard's address and token come from its configuration (--config,
// $SMTPGUARD_CONFIG or /etc/smtpguard/smtpguard.yaml: admin.listen, admin.token or the token
// file), or from --admin / --token-file / SMTPGUARD_ADMIN_TOKEN.
// Tables for people; --json prints the API's own JSON for scripts.

import AdminServer
import ArgumentParser
import Foundation
import GuardCore

struct AdminOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The guard's configuration file, for admin.listen and the token (default: $SMTPGUARD_CONFIG, else /etc/smtpguard/smtpguard.yaml when it exists).", valueName: "file"))
    var config: String?

    static let installedConfiguration = "/etc/smtpguard/smtpguard.yaml"

    /// --config, else $SMTPGUARD_CONFIG, else the installed configuration when there is one.
    var configurationFile: String? {
        if let config = self.config { return config }
        if let variable = ProcessInfo.processInfo.environment["SMTPGUARD_CONFIG"], !variable.isEmpty { return variable }
        return FileManager.default.fileExists(atPath: Self.installedConfiguration) ? Self.installedConfiguration : nil
    }

    @Option(name: .long, help: ArgumentHelp("The guard's admin API, HOST:PORT or a URL (default: admin.listen).", valueName: "address"))
    var admin: String?

    @Option(name: .long, help: ArgumentHelp("File holding the admin token (default: admin.token, else the guard's token file). SMTPGUARD_ADMIN_TOKEN also works.", valueName: "file"))
    var tokenFile: String?

    @Flag(name: .long, help: "Print the API's JSON instead of a table.")
    var json = false

    func client() throws -> AdminClient {
        let configuration = try CommandSupport.loadFile(self.configurationFile)
        let listen = self.admin ?? configuration.admin.listen
        guard !listen.isEmpty else { throw ValidationError("admin.listen is empty in the configuration: the admin API is off; give --admin HOST:PORT") }
        guard let base = AdminClient.baseURL(listen: listen) else { throw ValidationError("--admin: expected HOST:PORT or http://HOST:PORT, got \"\(listen)\"") }
        let token: String
        if let value = ProcessInfo.processInfo.environment["SMTPGUARD_ADMIN_TOKEN"], !value.isEmpty {
            token = value
        } else {
            var admin = configuration.admin
            if let file = self.tokenFile {
                admin.token = ""
                admin.tokenFile = file
            }
            do {
                token = try AdminToken.resolve(admin, statePath: configuration.state.url.isEmpty ? configuration.state.path : "", create: false).value
            } catch {
                throw StartupError("\(error)")
            }
        }
        return AdminClient(base: base, token: token)
    }
}

/// Rows in aligned columns.
enum Table {
    static func render(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}

/// The API's JSON, read for printing.
enum APIJSON {
    static func object(_ text: String) throws -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw StartupError("the guard's answer is not the JSON expected: \(text.prefix(200))")
        }
        return object
    }

    static func string(_ value: Any?) -> String {
        switch value {
        case let text as String: return text
        case let number as NSNumber: return number.stringValue
        case nil: return ""
        default: return "\(value!)"
        }
    }

    /// `2026-11-23T05:04:29.861Z` → `2026-11-23 05:04:29`.
    static func time(_ value: Any?) -> String {
        let text = self.string(value)
        guard text.count >= 19 else { return text }
        return String(text.prefix(19)).replacingOccurrences(of: "T", with: " ")
    }

    static func path(_ component: String) -> String {
        component.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~@:"))) ?? component
    }
}

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
            var query = ["limit=\(self.limit)"]
            if let scope { query.append("scope=\(APIJSON.path(scope))") }
            if let key { query.append("key=\(APIJSON.path(key))") }
            if let reason { query.append("reason=\(APIJSON.path(reason))") }
            let body = try await client.request(.GET, "/api/bans?" + query.joined(separator: "&"))
            if self.options.json { return print(body, terminator: "") }
            let object = try APIJSON.object(body)
            let bans = object["bans"] as? [[String: Any]] ?? []
            if bans.isEmpty { return print("no bans in force") }
            print(Table.render(
                ["SCOPE", "KEY", "REASON", "SINCE", "UNTIL", "OFFENCE"],
                bans.map { [APIJSON.string($0["scope"]), APIJSON.string($0["key"]), APIJSON.string($0["reason"]), APIJSON.time($0["since"]), APIJSON.time($0["until"]), APIJSON.string($0["offense"])] }))
            let total = object["total"] as? Int ?? bans.count
            if total > bans.count { print("(\(bans.count) of \(total); --limit for more)") }
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
            guard parseDuration(self.duration) != nil else { throw ValidationError("--duration: expected a duration such as 30m, 2h or 7d") }
            let client = try self.options.client()
            var json = JSONObjectWriter()
            json.string("scope", self.scope)
            json.string("key", self.key)
            json.string("duration", self.duration)
            json.string("reason", self.reason)
            let body = try await client.request(.POST, "/api/bans", json: json.finish())
            if self.options.json { return print(body, terminator: "") }
            let ban = try APIJSON.object(body)
            print("banned \(APIJSON.string(ban["scope"])) \(APIJSON.string(ban["key"])) until \(APIJSON.time(ban["until"])) (\(APIJSON.string(ban["reason"])))")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift a ban or lock now.")
        @OptionGroup var options: AdminOptions
        @Argument(help: "ip, prefix or username.") var scope: String
        @Argument(help: "The address, network or username, as `bans list` shows it.") var key: String

        func run() async throws {
            let client = try self.options.client()
            let body = try await client.request(.DELETE, "/api/bans/\(APIJSON.path(self.scope))/\(APIJSON.path(self.key))")
            if self.options.json { return print(body, terminator: "") }
            let ban = try APIJSON.object(body)
            print("lifted the ban on \(APIJSON.string(ban["scope"])) \(APIJSON.string(ban["key"]))")
        }
    }
}

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Recent events of a running guard (AUTH attempts, bans, alerts), or follow them live.")
    @OptionGroup var options: AdminOptions
    @Flag(name: [.short, .long], help: "Keep printing events as they happen (until interrupted or the guard stops).") var follow = false
    @Option(help: "Only these kinds, comma-separated: auth, ban, unban, alert, sending.") var kind: String?
    @Option(help: "Only this client address.") var client: String?
    @Option(help: "Only this username.") var username: String?
    @Option(help: "Since a time (2026-11-23T10:00:00Z) or this long ago (15m).") var since: String?
    @Option(help: "At most this many earlier events (1-1000).") var limit = 50

    func run() async throws {
        let client = try self.options.client()
        var query = ["limit=\(self.limit)"]
        if let kind { query.append("kind=\(APIJSON.path(kind))") }
        if let address = self.client { query.append("client=\(APIJSON.path(address))") }
        if let username { query.append("username=\(APIJSON.path(username))") }
        if let since { query.append("since=\(APIJSON.path(since))") }
        if self.follow {
            try await client.follow("/api/events?follow=1&" + query.joined(separator: "&")) { data in
                if self.options.json {
                    print(data)
                } else if let event = try? APIJSON.object(data) {
                    print(Self.line(event))
                }
                fflush(nil)
            }
            return
        }
        let body = try await client.request(.GET, "/api/events?" + query.joined(separator: "&"))
        if self.options.json { return print(body, terminator: "") }
        let events = try APIJSON.object(body)["events"] as? [[String: Any]] ?? []
        if events.isEmpty { return print("no events") }
        for event in events { print(Self.line(event)) }
    }

    /// One event as a line for people.
    static func line(_ e: [String: Any]) -> String {
        let time = APIJSON.time(e["time"])
        let s = { (key: String) in APIJSON.string(e[key]) }
        switch s("event") {
        case "auth":
            let delay = (e["delay_ms"] as? Int).map { $0 > 0 ? " delay \($0)ms" : "" } ?? ""
            return "\(time)  auth    \(s("client_ip"))  \(s("username"))  \(s("mechanism")) \(s("outcome")) → \(s("decision"))\(delay)  [\(s("source"))]"
        case "ban":
            return "\(time)  ban     \(s("scope")) \(s("key")) until \(APIJSON.time(e["until"])) (\(s("reason")), offence \(s("offense")))"
        case "unban":
            return "\(time)  unban   \(s("scope")) \(s("key")) (\(s("why")))"
        case "alert":
            return "\(time)  ALERT   \(s("kind")) [\(s("severity"))]: \(s("message"))"
        case "sending":
            return "\(time)  sending \(s("username")) \(s("counts")) \(s("decision")) \(s("limit"))"
        default:
            return "\(time)  \(s("event"))"
        }
    }
}

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Attempts, failures, bans and the top attacking addresses, networks and usernames of a running guard.")
    @OptionGroup var options: AdminOptions
    @Option(help: "Periods, comma-separated, each at most 24h.") var period = "1h,24h"
    @Option(help: "How many of each top list.") var top = 10

    func run() async throws {
        let client = try self.options.client()
        let body = try await client.request(.GET, "/api/stats?period=\(APIJSON.path(self.period))&top=\(self.top)")
        if self.options.json { return print(body, terminator: "") }
        let stats = try APIJSON.object(body)
        let periods = stats["periods"] as? [[String: Any]] ?? []
        let figures = ["attempts", "successes", "failures", "refused", "bans", "alerts"]
        print(Table.render(["LAST"] + figures.map { $0.uppercased() }, periods.map { p in [APIJSON.string(p["period"])] + figures.map { APIJSON.string(p[$0]) } }))
        if let active = stats["active_bans"] as? [String: Any] {
            print("\nin force now: \(APIJSON.string(active["ip"])) address bans, \(APIJSON.string(active["prefix"])) network bans, \(APIJSON.string(active["username"])) username locks")
        }
        for p in periods {
            for (title, key) in [("ADDRESS", "top_ips"), ("NETWORK", "top_prefixes"), ("USERNAME", "top_usernames")] {
                let rows = (p[key] as? [[String: Any]] ?? []).map { [APIJSON.string($0["key"]), APIJSON.string($0["failures"])] }
                guard !rows.isEmpty else { continue }
                print("\ntop failing, last \(APIJSON.string(p["period"])):")
                print(Table.render([title, "FAILURES"], rows))
            }
        }
    }
}

struct TrustedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trusted", abstract: "Networks a running guard never bans, tarpits or locks out.",
        subcommands: [List.self, Add.self, Remove.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Trusted networks: the configuration file's and those added here.")
        @OptionGroup var options: AdminOptions

        func run() async throws {
            let client = try self.options.client()
            let body = try await client.request(.GET, "/api/trusted")
            if self.options.json { return print(body, terminator: "") }
            let networks = try APIJSON.object(body)["networks"] as? [[String: Any]] ?? []
            if networks.isEmpty { return print("no trusted networks") }
            print(Table.render(
                ["NETWORK", "FROM", "ADDED", "COMMENT"],
                networks.map { [APIJSON.string($0["network"]), APIJSON.string($0["origin"]), APIJSON.time($0["added"]), APIJSON.string($0["comment"])] }))
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Trust a network from now on (kept in the state across restarts).")
        @OptionGroup var options: AdminOptions
        @Argument(help: "An address or network: 192.0.2.0/24, 2001:db8::/48.") var network: String
        @Option(help: "Why (shown in the list).") var comment = ""

        func run() async throws {
            let client = try self.options.client()
            var json = JSONObjectWriter()
            json.string("network", self.network)
            json.string("comment", self.comment)
            let body = try await client.request(.POST, "/api/trusted", json: json.finish())
            if self.options.json { return print(body, terminator: "") }
            let entry = try APIJSON.object(body)
            let origin = APIJSON.string(entry["origin"])
            print(origin == "configuration" ? "\(APIJSON.string(entry["network"])) is already trusted by the configuration file" : "trusted \(APIJSON.string(entry["network"]))")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop trusting a network added with `trusted add`.")
        @OptionGroup var options: AdminOptions
        @Argument(help: "The network, as `trusted list` shows it.") var network: String

        func run() async throws {
            let client = try self.options.client()
            let body = try await client.request(.DELETE, "/api/trusted/\(APIJSON.path(self.network))")
            if self.options.json { return print(body, terminator: "") }
            print("no longer trusted: \(self.network)")
        }
    }
}
