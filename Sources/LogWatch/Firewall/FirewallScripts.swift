// The text each firewall tool takes for a batch: one `nft -f -` transaction, one
// `ipset restore` script, one `iptables-restore --noflush` table. Thousands of elements go in
// a handful of statements.

import Foundation

public struct FirewallNames: Sendable, Equatable {
    /// nftables: the table (family inet); ipset: the prefix of the set names; iptables: the chain.
    public var table: String
    /// TCP ports the firewall closes to banned clients.
    public var ports: [Int]

    public init(table: String = "smtpguard", ports: [Int] = [25, 465, 587]) {
        self.table = table
        self.ports = ports
    }

    func set(_ set: FirewallSet) -> String { "\(self.table)_\(set.rawValue)" }
}

public enum NftablesScript {
    /// Creates (or re-creates, empty) the table, its four sets and the drop rules.
    public static func setup(_ names: FirewallNames) -> String {
        let ports = names.ports.map(String.init).joined(separator: ", ")
        var text = "add table inet \(names.table)\ndelete table inet \(names.table)\ntable inet \(names.table) {\n"
        for set in FirewallSet.allCases {
            let type = set.isIPv6 ? "ipv6_addr" : "ipv4_addr"
            let flags = set.isInterval ? "interval, timeout" : "timeout"
            text += "  set \(set.rawValue) { type \(type); flags \(flags); }\n"
        }
        text += "  chain input {\n    type filter hook input priority -10; policy accept;\n"
        for set in FirewallSet.allCases {
            text += "    \(set.isIPv6 ? "ip6" : "ip") saddr @\(set.rawValue) tcp dport { \(ports) } drop\n"
        }
        text += "  }\n}\n"
        return text
    }

    /// One transaction for the whole batch, in order (a re-ban is a removal, then an add), in
    /// statements of at most `chunk` elements for runs of the same kind and set.
    public static func batch(_ changes: [FirewallChange], names: FirewallNames, chunk: Int = 5000) -> String {
        var text = ""
        var pending: [(remove: Bool, set: FirewallSet, item: String)] = []
        func flush() {
            var index = 0
            while index < pending.count {
                let head = pending[index]
                var items: [String] = []
                while index < pending.count, pending[index].remove == head.remove, pending[index].set == head.set, items.count < chunk {
                    items.append(pending[index].item)
                    index += 1
                }
                text += "\(head.remove ? "delete" : "add") element inet \(names.table) \(head.set.rawValue) { \(items.joined(separator: ", ")) }\n"
            }
            pending.removeAll()
        }
        for change in changes {
            switch change {
            case .remove(let entry):
                pending.append((true, entry.set, entry.text))
            case .add(let entry, let seconds):
                pending.append((false, entry.set, "\(entry.text) timeout \(seconds)s"))
            }
        }
        flush()
        return text
    }
}

public enum IpsetScript {
    public static func setup(_ names: FirewallNames) -> String {
        FirewallSet.allCases.map { set in
            "create \(names.set(set)) \(set.isInterval ? "hash:net" : "hash:ip") family \(set.isIPv6 ? "inet6" : "inet") timeout 0 maxelem 2000000 -exist\n"
        }.joined()
    }

    /// ipset's -exist makes an add refresh the timeout and a del of a missing element harmless.
    public static func batch(_ changes: [FirewallChange], names: FirewallNames) -> String {
        var text = ""
        for change in changes {
            switch change {
            case .add(let entry, let seconds): text += "add \(names.set(entry.set)) \(entry.text) timeout \(min(seconds, 2_147_483)) -exist\n"
            case .remove(let entry): text += "del \(names.set(entry.set)) \(entry.text) -exist\n"
            }
        }
        return text
    }

    /// The rules an administrator adds once to use the sets.
    public static func rules(_ names: FirewallNames) -> [String] {
        let ports = names.ports.map(String.init).joined(separator: ",")
        return FirewallSet.allCases.map { set in
            "\(set.isIPv6 ? "ip6tables" : "iptables") -I INPUT -p tcp -m multiport --dports \(ports) -m set --match-set \(names.set(set)) src -j DROP"
        }
    }
}

public enum IptablesScript {
    /// The chain, emptied, and (`jump`, when INPUT has none yet) a jump to it from INPUT for the
    /// mail ports (for iptables-restore --noflush, per family).
    public static func setup(_ names: FirewallNames, ipv6: Bool, jump: Bool = true) -> String {
        let ports = names.ports.map(String.init).joined(separator: ",")
        let chain = names.table.uppercased()
        return "*filter\n:\(chain) - [0:0]\n-F \(chain)\n" + (jump ? "-I INPUT -p tcp -m multiport --dports \(ports) -j \(chain)\n" : "") + "COMMIT\n"
    }

    public static func batch(_ changes: [FirewallChange], names: FirewallNames, ipv6: Bool) -> String {
        let chain = names.table.uppercased()
        var lines: [String] = []
        for change in changes {
            switch change {
            case .add(let entry, _) where entry.set.isIPv6 == ipv6: lines.append("-A \(chain) -s \(entry.text) -j DROP")
            case .remove(let entry) where entry.set.isIPv6 == ipv6: lines.append("-D \(chain) -s \(entry.text) -j DROP")
            default: continue
            }
        }
        guard !lines.isEmpty else { return "" }
        return "*filter\n" + lines.joined(separator: "\n") + "\nCOMMIT\n"
    }
}

public enum CommandTemplate {
    /// The arguments of a template ("/usr/local/bin/block {address} {seconds}") for one
    /// change: split on spaces first, then each placeholder replaced, so an address can never
    /// become two arguments or reach a shell.
    public static func arguments(_ template: String, change: FirewallChange) -> [String] {
        let (entry, seconds): (FirewallEntry, Int) =
            switch change {
            case .add(let entry, let seconds): (entry, seconds)
            case .remove(let entry): (entry, 0)
            }
        return template.split(separator: " ", omittingEmptySubsequences: true).map { word in
            word.replacingOccurrences(of: "{address}", with: entry.text)
                .replacingOccurrences(of: "{seconds}", with: String(seconds))
                .replacingOccurrences(of: "{family}", with: entry.set.isIPv6 ? "inet6" : "inet")
        }
    }
}
