// Line splitting, line times, counting a failure seen twice once, firewall batches, replay.

import Foundation
import GuardCore
import Testing

@testable import LogWatch

@Suite("Watcher pipeline")
struct PipelineTests {
    @Test("syslog, RFC 3339, Exim and Exchange times; a December line read in January is last year's")
    func times() {
        func t(_ s: String, year: Int = 2026, month: Int = 11) -> Timestamp? { LineTime.parse(Array(s.utf8)[...], year: year, month: month) }
        let base = LineTime.epochSeconds(year: 2026, month: 11, day: 23, hour: 2, minute: 3, second: 14)!
        #expect(t("Nov 23 02:03:14 mx postfix/smtpd[1]: x") == Timestamp(seconds: base))
        #expect(t("Nov  3 02:03:14 mx postfix/smtpd[1]: x") == Timestamp(seconds: base - 20 * 86_400))
        #expect(t("2026-11-23T03:03:14.5+01:00 mx x: y") == Timestamp(nanoseconds: base * 1_000_000_000 + 500_000_000))
        #expect(t("2026-11-23 02:03:14 login authenticator failed") == Timestamp(seconds: base))
        #expect(t("Dec 31 23:59:59 mx x: y", year: 2027, month: 1) == Timestamp(seconds: LineTime.epochSeconds(year: 2026, month: 12, day: 31, hour: 23, minute: 59, second: 59)!))
        #expect(t("garbage line that is long enough") == nil)
        #expect(LineTime.yearMonth(Timestamp(seconds: base)) == (2026, 11))
    }

    @Test("the line splitter joins, cuts and drops CR")
    func splitter() {
        var splitter = LineSplitter(maxLineLength: 8)
        var lines: [String] = []
        let take: (ArraySlice<UInt8>) -> Void = { lines.append(String(decoding: $0, as: UTF8.self)) }
        splitter.feed(Array("abc\r\nde".utf8), line: take)
        splitter.feed(Array("f\n0123456789abcdef".utf8), line: take)
        splitter.feed(Array("ghij\nok\n".utf8), line: take)
        #expect(lines == ["abc", "def", "01234567", "ok"])
        #expect(splitter.truncatedLines == 1)
    }

    static func evidence(_ format: String, _ rule: String, _ client: String, _ user: String, count: Int = 1) -> LogEvidence {
        LogEvidence(format: format, rule: rule, client: IPAddress(client)!, username: user, outcome: .failure, count: count, time: nil)
    }

    @Test("Postfix's and Dovecot's lines for one guess count once; separate guesses count separately")
    func deduplication() {
        var d = Deduplicator(window: .seconds(5))
        let t0 = Timestamp(seconds: 1000)
        #expect(d.admit(Self.evidence("postfix", "sasl_failed", "192.0.2.1", "alice"), at: t0) == 1)
        #expect(d.admit(Self.evidence("dovecot", "password_mismatch", "192.0.2.1", "alice"), at: t0) == 0)
        // Two guesses from the same program are two.
        #expect(d.admit(Self.evidence("dovecot", "password_mismatch", "192.0.2.1", "alice"), at: t0 + .seconds(1)) == 1)
        #expect(d.admit(Self.evidence("dovecot", "password_mismatch", "192.0.2.1", "alice"), at: t0 + .seconds(1)) == 1)
        // Postfix without a username pairs with one of them.
        #expect(d.admit(Self.evidence("postfix", "sasl_failed", "192.0.2.1", ""), at: t0 + .seconds(2)) == 0)
        // Another username, or too late, does not pair.
        #expect(d.admit(Self.evidence("postfix", "sasl_failed", "192.0.2.1", "bob"), at: t0 + .seconds(2)) == 1)
        #expect(d.admit(Self.evidence("postfix", "sasl_failed", "192.0.2.1", "alice"), at: t0 + .seconds(30)) == 1)
        // Dovecot's "3 attempts" on disconnect pairs with the auth process's lines.
        var e = Deduplicator()
        for _ in 0..<2 { #expect(e.admit(Self.evidence("dovecot", "password_mismatch", "192.0.2.2", "carol"), at: t0) == 1) }
        #expect(e.admit(Self.evidence("dovecot", "auth_failed_attempts", "192.0.2.2", "carol", count: 3), at: t0) == 1)
    }

    @Test("firewall model and nftables batches: one statement per set, re-bans replace, expiries need nothing")
    func firewall() {
        var policy = GuardPolicy()
        policy.ipv6ClientPrefix = 64
        var model = FirewallModel()
        let now: Int64 = 1_000_000
        func ban(_ key: BanKey, _ seconds: Int64) -> Ban {
            Ban(key: key, since: Timestamp(seconds: now), until: Timestamp(seconds: now + seconds), reason: .ipFailures, offense: 1)
        }
        let bans = [
            ban(.ip(IPAddress("192.0.2.1")!), 600), ban(.ip(IPAddress("192.0.2.2")!), 600),
            ban(.ip(IPAddress("2001:db8:1:2::")!), 600), ban(.prefix(IPNetwork("198.51.100.0/24")!), 3600),
            ban(.prefix(IPNetwork("2001:db8::/48")!), 3600), ban(.username("alice"), 600),
        ]
        let changes = model.changes(for: bans.map { .ban($0) }, policy: policy, now: now, timeouts: true)
        #expect(changes.count == 5)  // the username lock is not the firewall's
        let script = NftablesScript.batch(changes, names: FirewallNames())
        #expect(script == """
            add element inet smtpguard v4 { 192.0.2.1 timeout 600s, 192.0.2.2 timeout 600s }
            add element inet smtpguard v6 { 2001:db8:1:2::/64 timeout 600s }
            add element inet smtpguard v4net { 198.51.100.0/24 timeout 3600s }
            add element inet smtpguard v6net { 2001:db8::/48 timeout 3600s }

            """)
        // A second ban of the same address replaces the element; an expiry removes nothing; a lift does.
        let again = model.changes(for: [.ban(ban(.ip(IPAddress("192.0.2.1")!), 7200))], policy: policy, now: now + 10, timeouts: true)
        #expect(NftablesScript.batch(again, names: FirewallNames()) == "delete element inet smtpguard v4 { 192.0.2.1 }\nadd element inet smtpguard v4 { 192.0.2.1 timeout 7190s }\n")
        #expect(model.changes(for: [.unban(bans[1], time: Timestamp(seconds: now + 600), lifted: false)], policy: policy, now: now + 600, timeouts: true).isEmpty)
        #expect(model.changes(for: [.unban(bans[3], time: Timestamp(seconds: now + 60), lifted: true)], policy: policy, now: now + 60, timeouts: true) == [.remove(FirewallEntry(network: IPNetwork("198.51.100.0/24")!, set: .v4Networks))])
        // Without timeouts (iptables, command) an expiry is a removal.
        var plain = FirewallModel()
        _ = plain.changes(for: [.ban(bans[0])], policy: policy, now: now, timeouts: false)
        #expect(plain.changes(for: [.unban(bans[0], time: Timestamp(seconds: now + 600), lifted: false)], policy: policy, now: now + 600, timeouts: false).count == 1)
        // ipset, iptables, command templates.
        #expect(IpsetScript.batch(changes.prefix(1).map { $0 }, names: FirewallNames()) == "add smtpguard_v4 192.0.2.1 timeout 600 -exist\n")
        #expect(IptablesScript.batch(changes, names: FirewallNames(), ipv6: true) == "*filter\n-A SMTPGUARD -s 2001:db8:1:2::/64 -j DROP\n-A SMTPGUARD -s 2001:db8::/48 -j DROP\nCOMMIT\n")
        #expect(CommandTemplate.arguments("/bin/block --addr={address} {seconds}s {family}", change: changes[2]) == ["/bin/block", "--addr=2001:db8:1:2::/64", "600s", "inet6"])
    }

    @Test("replay: bans in line-time order, likely compromised accounts, default usernames")
    func replay() throws {
        var lines: [String] = []
        for i in 0..<8 {
            lines.append("Nov 23 01:00:\(String(format: "%02d", i)) mx postfix/smtpd[1]: warning: unknown[203.0.113.9]: SASL LOGIN authentication failed: x, sasl_username=user\(i)")
        }
        lines.append("Nov 23 01:02:00 mx postfix/smtpd[1]: 4XyZ: client=unknown[203.0.113.9], sasl_method=PLAIN, sasl_username=carol")
        lines.append("Nov 23 01:03:00 mx postfix/smtpd[1]: warning: unknown[192.0.2.50]: SASL LOGIN authentication failed: x, sasl_username=admin")
        let path = NSTemporaryDirectory() + "replay-\(UInt64.random(in: 0...UInt64.max)).log"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        var replayer = try Replayer(policy: GuardPolicy(), formats: ["postfix"], patterns: [], now: Timestamp(seconds: LineTime.epochSeconds(year: 2026, month: 11, day: 23, hour: 3, minute: 0, second: 0)!))
        try replayer.read(path: path)
        let report = replayer.report()
        #expect(report.lines == 10 && report.failures == 9 && report.successes == 1)
        #expect(report.compromised.map(\.username) == ["carol"])
        #expect(report.defaultUsernames.map(\.0) == ["admin"])
        let ipBan = try #require(report.bans.first { $0.key == .ip(IPAddress("203.0.113.9")!) })
        #expect(ipBan.since.iso8601.hasPrefix("2026-11-23T01:00:0"))
        #expect(report.json.contains("\"compromised\":[{"))
        #expect(report.text.contains("Likely compromised accounts"))
        #expect(throws: ReplayError.self) { try replayer.read(path: "/nonexistent/mail.log") }
    }
}
