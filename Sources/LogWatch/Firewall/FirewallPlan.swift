// What the firewall must hold, and the commands that get it there. Pure: it turns ban and
// unban events into batches of text for nft / ipset / iptables-restore (or argument lists for
// a command template), and keeps a model of what the firewall holds so that a batch never
// deletes an element that is not there or adds one twice (nft and iptables-restore apply a
// batch all or nothing, so one stale element would lose the whole batch).
//
// Elements are grouped by family and by width so that no two elements of one set overlap:
//   v4 hosts (IP bans), v4 networks (prefix bans, /24 by default),
//   v6 clients (IP bans, which are /64 networks by default), v6 networks (/48 by default).

import GuardCore

/// One ban as the firewall sees it: an address or prefix and how long it lasts.
public struct FirewallEntry: Hashable, Sendable {
    public var network: IPNetwork
    public var set: FirewallSet
    public init(network: IPNetwork, set: FirewallSet) {
        self.network = network
        self.set = set
    }

    /// The text nft, ipset and iptables take: "192.0.2.1" for a host, "2001:db8::/64" otherwise.
    public var text: String {
        self.network.prefixLength == self.network.address.maxPrefixLength ? self.network.address.description : self.network.description
    }
}

public enum FirewallSet: String, CaseIterable, Sendable {
    case v4 = "v4"
    case v4Networks = "v4net"
    case v6 = "v6"
    case v6Networks = "v6net"

    public var isIPv6: Bool { self == .v6 || self == .v6Networks }
    public var isInterval: Bool { self != .v4 }
}

public enum FirewallBackendKind: String, Sendable, CaseIterable {
    case nftables
    case ipset
    case iptables
    case command
    case none
}

/// The entry a ban stands for, or nil (username locks are not a firewall's business).
public func firewallEntry(for key: BanKey, policy: GuardPolicy) -> FirewallEntry? {
    switch key {
    case .ip(let address):
        if address.isIPv4 { return FirewallEntry(network: IPNetwork(address: address, prefixLength: 32), set: .v4) }
        return FirewallEntry(network: IPNetwork(address: address.masked(to: policy.ipv6ClientPrefix), prefixLength: policy.ipv6ClientPrefix), set: .v6)
    case .prefix(let network):
        return FirewallEntry(network: network, set: network.address.isIPv4 ? .v4Networks : .v6Networks)
    case .username:
        return nil
    }
}

/// A change to the firewall.
public enum FirewallChange: Sendable, Equatable {
    case add(FirewallEntry, seconds: Int)
    case remove(FirewallEntry)
}

/// The model of what the firewall holds, and what a batch of changes needs.
public struct FirewallModel: Sendable {
    /// Entries in the firewall and when their timeout runs out (seconds since 1970).
    public private(set) var entries: [FirewallEntry: Int64] = [:]
    public init() {}

    /// Turns ban / unban events into changes, updating the model. `now` in seconds since 1970;
    /// a ban's end is rounded to the nearest second.
    /// An unban by expiry needs nothing: the element's own timeout removes it (backends without
    /// timeouts get a removal).
    public mutating func changes(for events: [GuardEvent], policy: GuardPolicy, now: Int64, timeouts: Bool) -> [FirewallChange] {
        var changes: [FirewallChange] = []
        for event in events {
            switch event {
            case .ban(let ban):
                guard let entry = firewallEntry(for: ban.key, policy: policy) else { continue }
                let until = (ban.until.nanoseconds + 500_000_000) / 1_000_000_000
                let seconds = Int(max(1, until - now))
                if let held = self.entries[entry], held > now + (timeouts ? 1 : 0) {
                    changes.append(.remove(entry))
                }
                self.entries[entry] = until
                changes.append(.add(entry, seconds: seconds))
            case .unban(let ban, _, let lifted):
                guard let entry = firewallEntry(for: ban.key, policy: policy), let held = self.entries.removeValue(forKey: entry) else { continue }
                // Near its end the kernel may remove it first; a removal of a missing element
                // would fail the batch.
                if !timeouts || (lifted && held > now + 1) { changes.append(.remove(entry)) }
            case .attempt, .alert, .sending:
                continue
            }
        }
        return changes
    }

    /// Drops entries whose timeout has run out (the kernel removed them).
    public mutating func expire(now: Int64) {
        self.entries = self.entries.filter { $0.value > now }
    }
}

/// The ban list (`firewall.banlist_listen`'s `GET /bans`): the entries of the bans in force,
/// one per line, sorted, each once (username locks are not listed).
public func banListText(_ bans: [Ban], policy: GuardPolicy) -> String {
    var lines = Set<String>()
    for ban in bans { if let entry = firewallEntry(for: ban.key, policy: policy) { lines.insert(entry.text) } }
    return lines.sorted().map { $0 + "\n" }.joined()
}
