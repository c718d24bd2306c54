// `smtpguard stats`: a running guard's figures per period, the bans in force and the top
// failing addresses, networks and usernames, through its admin API (AdminClient).

import AdminServer
import ArgumentParser
import Audit

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Attempts, failures, bans and the top attacking addresses, networks and usernames of a running guard.")
    @OptionGroup var options: AdminOptions
    @Option(help: "Periods, comma-separated, each at most 24h.") var period = "1h,24h"
    @Option(help: "How many of each top list.") var top = 10

    func run() async throws {
        let client = try self.options.client()
        let answer = try await client.stats(periods: self.period, top: self.top)
        if self.options.json { return print(answer.text, terminator: "") }
        let stats = try answer.value()
        let header = ["LAST", "ATTEMPTS", "SUCCESSES", "FAILURES", "REFUSED", "BANS", "ALERTS"]
        print(TextTable.render(header, stats.periods.map { p in [p.period] + [p.attempts, p.successes, p.failures, p.refused, p.bans, p.alerts].map(String.init) }))
        let active = stats.activeBans
        print("\nin force now: \(active.ip) address bans, \(active.prefix) network bans, \(active.username) username locks")
        for p in stats.periods {
            for (title, top) in [("ADDRESS", p.topIPs), ("NETWORK", p.topPrefixes), ("USERNAME", p.topUsernames)] {
                guard !top.isEmpty else { continue }
                print("\ntop failing, last \(p.period):")
                print(TextTable.render([title, "FAILURES"], top.map { [$0.key, String($0.failures)] }))
            }
        }
    }
}
