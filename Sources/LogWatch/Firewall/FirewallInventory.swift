// What the firewall holds, read back from the tool (`nft -j list table`, `ipset save`,
// `iptables -S`), so that the watcher notices when its table, sets or chain are gone (a
// `systemctl restart nftables` flushes the whole ruleset) or elements are missing, and puts
// them back. Pure parsing; FirewallRunner runs the tools.

import Foundation
import GuardCore

/// The elements of each set (iptables: each family's chain, under its host set), or nil when
/// the table, a set, the chain or its jump is missing.
public typealias FirewallHeld = [FirewallSet: Set<IPNetwork>]

public enum FirewallInventory {
    /// `nft -j list table inet TABLE`: every set of ours and the input chain must be there.
    public static func nftables(json: String, names: FirewallNames) -> FirewallHeld? {
        guard let root = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let objects = root["nftables"] as? [[String: Any]]
        else { return nil }
        var held: FirewallHeld = [:]
        var chain = false
        for object in objects {
            if let set = object["set"] as? [String: Any], set["table"] as? String == names.table,
                let name = set["name"] as? String, let kind = FirewallSet(rawValue: name)
            {
                var elements = Set<IPNetwork>()
                for element in set["elem"] as? [Any] ?? [] {
                    if let network = Self.nftElement(element) { elements.insert(network) }
                }
                held[kind] = elements
            }
            if let found = object["chain"] as? [String: Any], found["table"] as? String == names.table, found["name"] as? String == "input" {
                chain = true
            }
        }
        guard chain, held.count == FirewallSet.allCases.count else { return nil }
        return held
    }

    /// An element: "192.0.2.1", {"prefix": {"addr", "len"}}, or either inside {"elem": {"val": …}}.
    static func nftElement(_ value: Any) -> IPNetwork? {
        if let text = value as? String { return IPNetwork(text) }
        guard let object = value as? [String: Any] else { return nil }
        if let element = object["elem"] as? [String: Any], let inner = element["val"] { return self.nftElement(inner) }
        if let prefix = object["prefix"] as? [String: Any], let address = prefix["addr"] as? String, let length = prefix["len"] as? Int {
            return IPNetwork("\(address)/\(length)")
        }
        return nil
    }

    /// `ipset save`: each of our four sets must be created.
    public static func ipset(save: String, names: FirewallNames) -> FirewallHeld? {
        let byName = Dictionary(uniqueKeysWithValues: FirewallSet.allCases.map { (names.set($0), $0) })
        var held: FirewallHeld = [:]
        for line in save.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard words.count >= 2, let set = byName[String(words[1])] else { continue }
            if words[0] == "create" { held[set, default: []] = held[set] ?? [] }
            if words[0] == "add", words.count >= 3, let network = IPNetwork(words[2]) { held[set, default: []].insert(network) }
        }
        guard held.count == FirewallSet.allCases.count else { return nil }
        return held
    }

    /// `iptables -S` (the filter table) of one family: the chain's DROP rules, and how many
    /// jumps from INPUT lead to it; nil when the chain is missing.
    public static func iptables(rules: String, names: FirewallNames) -> (held: Set<IPNetwork>, jumps: Int)? {
        let chain = names.table.uppercased()
        var exists = false
        var held = Set<IPNetwork>()
        var jumps = 0
        for line in rules.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words == ["-N", Substring(chain)] { exists = true }
            if words.first == "-A", words.count >= 2, words[1] == "INPUT", words.suffix(2) == ["-j", Substring(chain)] { jumps += 1 }
            if words.count == 6, words[0] == "-A", words[1] == Substring(chain), words[2] == "-s", words[4] == "-j", words[5] == "DROP",
                let network = IPNetwork(words[3])
            {
                held.insert(network)
            }
        }
        return exists ? (held, jumps) : nil
    }
}
