// Reading back what the firewall holds (nft -j, ipset save, iptables -S), the iptables jump
// added only once, and a log source's silence alert.

import GuardCore
import Testing

@testable import LogWatch

@Suite("Firewall read-back and source health")
struct FirewallHealthTests {
    let names = FirewallNames(table: "smtpguard", ports: [25, 587])

    // What `nft -j list table inet smtpguard` prints (nft 1.0.6), shortened to one element of each form.
    static let nftJSON = """
        {"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "smtpguard", "handle": 1}},
        {"set": {"family": "inet", "name": "v4", "table": "smtpguard", "type": "ipv4_addr", "handle": 1, "flags": ["timeout"], "elem": [{"elem": {"val": "192.0.2.1", "timeout": 100, "expires": 99}}, "192.0.2.2"]}},
        {"set": {"family": "inet", "name": "v4net", "table": "smtpguard", "type": "ipv4_addr", "handle": 2, "flags": ["interval", "timeout"], "elem": [{"elem": {"val": {"prefix": {"addr": "198.51.100.0", "len": 24}}, "timeout": 100, "expires": 99}}]}},
        {"set": {"family": "inet", "name": "v6", "table": "smtpguard", "type": "ipv6_addr", "handle": 3, "flags": ["interval", "timeout"], "elem": [{"elem": {"val": {"prefix": {"addr": "2001:db8:5:6::", "len": 64}}, "timeout": 100, "expires": 99}}]}},
        {"set": {"family": "inet", "name": "v6net", "table": "smtpguard", "type": "ipv6_addr", "handle": 4, "flags": ["interval", "timeout"]}},
        {"chain": {"family": "inet", "table": "smtpguard", "name": "input", "handle": 5, "type": "filter", "hook": "input", "prio": -10, "policy": "accept"}}]}
        """

    @Test("nft -j: every element form is read; a missing set or chain means the table must be made again")
    func nftables() throws {
        let held = try #require(FirewallInventory.nftables(json: Self.nftJSON, names: self.names))
        #expect(held[.v4] == [IPNetwork("192.0.2.1")!, IPNetwork("192.0.2.2")!])
        #expect(held[.v4Networks] == [IPNetwork("198.51.100.0/24")!])
        #expect(held[.v6] == [IPNetwork("2001:db8:5:6::/64")!])
        #expect(held[.v6Networks] == [])
        // The entry the firewall model keeps for a banned /64 is found in what nft lists.
        let entry = firewallEntry(for: .ip(IPAddress("2001:db8:5:6::99")!), policy: GuardPolicy())!
        #expect(held[entry.set]?.contains(entry.network) == true)
        let noChain = Self.nftJSON.replacingOccurrences(of: #""name": "input""#, with: #""name": "other""#)
        #expect(FirewallInventory.nftables(json: noChain, names: self.names) == nil)
        let noSet = Self.nftJSON.replacingOccurrences(of: #""name": "v6net""#, with: #""name": "x""#)
        #expect(FirewallInventory.nftables(json: noSet, names: self.names) == nil)
        #expect(FirewallInventory.nftables(json: "", names: self.names) == nil)
        #expect(FirewallInventory.nftables(json: Self.nftJSON, names: FirewallNames(table: "other")) == nil)
    }

    @Test("ipset save: elements of our four sets; a set that is gone means set up again")
    func ipset() throws {
        let save = """
            create smtpguard_v4 hash:ip family inet hashsize 1024 maxelem 2000000 timeout 0
            add smtpguard_v4 192.0.2.7 timeout 96
            create smtpguard_v4net hash:net family inet hashsize 1024 maxelem 2000000 timeout 0
            add smtpguard_v4net 198.51.100.0/24 timeout 96
            create smtpguard_v6 hash:ip family inet6 hashsize 1024 maxelem 2000000 timeout 0
            create smtpguard_v6net hash:net family inet6 hashsize 1024 maxelem 2000000 timeout 0
            create other hash:ip family inet
            add other 203.0.113.1
            """
        let held = try #require(FirewallInventory.ipset(save: save, names: self.names))
        #expect(held[.v4] == [IPNetwork("192.0.2.7")!] && held[.v4Networks] == [IPNetwork("198.51.100.0/24")!] && held[.v6] == [])
        let gone = save.split(separator: "\n").filter { !$0.contains("smtpguard_v6net") }.joined(separator: "\n")
        #expect(FirewallInventory.ipset(save: gone, names: self.names) == nil)
    }

    @Test("iptables -S: the chain's rules and the jumps to it; the jump is added at setup only when there is none")
    func iptables() throws {
        let rules = """
            -P INPUT ACCEPT
            -N SMTPGUARD
            -A INPUT -p tcp -m multiport --dports 25,587 -j SMTPGUARD
            -A INPUT -p tcp -m multiport --dports 25,587 -j SMTPGUARD
            -A SMTPGUARD -s 192.0.2.9/32 -j DROP
            -A SMTPGUARD -s 198.51.100.0/24 -j DROP
            """
        let found = try #require(FirewallInventory.iptables(rules: rules, names: self.names))
        #expect(found.jumps == 2)
        #expect(found.held == [IPNetwork("192.0.2.9/32")!, IPNetwork("198.51.100.0/24")!])
        #expect(FirewallInventory.iptables(rules: "-P INPUT ACCEPT\n", names: self.names) == nil)
        #expect(IptablesScript.setup(self.names, ipv6: false, jump: true).contains("-I INPUT -p tcp -m multiport --dports 25,587 -j SMTPGUARD"))
        #expect(!IptablesScript.setup(self.names, ipv6: false, jump: false).contains("-I INPUT"))
    }

    @Test("a source silent for the interval raises one alert, naming it; a line re-arms it; 0s never alerts")
    func silence() {
        let start = Timestamp(seconds: 1_000_000)
        var health = SourceHealth(name: "postfix journald:unit=postfix.service", silence: .seconds(3600), start: start)
        #expect(health.note(lines: 0, at: start + .seconds(3599)) == nil)
        guard case .fellSilent(let alert)? = health.note(lines: 0, at: start + .seconds(3600)) else {
            Issue.record("no alert after an hour without a line")
            return
        }
        #expect(alert.kind == .sourceSilent && alert.severity == .warning)
        #expect(alert.message.contains("\"postfix journald:unit=postfix.service\" has read no line for 1h"))
        #expect(health.silent)
        #expect(health.note(lines: 0, at: start + .seconds(9000)) == nil, "one alert per silence")
        #expect(health.note(lines: 3, at: start + .seconds(9600)) == .readAgain(after: .seconds(9600)))
        #expect(!health.silent)
        #expect(health.note(lines: 0, at: start + .seconds(9600 + 3599)) == nil)
        #expect(health.note(lines: 0, at: start + .seconds(9600 + 3600)) != nil, "armed again")
        var off = SourceHealth(name: "x", silence: .zero, start: start)
        #expect(off.note(lines: 0, at: start + .seconds(1_000_000)) == nil)
    }
}
