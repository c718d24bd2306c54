// Carries firewall batches out: writes the batch to a private temporary file and runs the tool
// on it (nft -f, ipset restore -file, iptables-restore --noflush), or runs the command template
// once per change. A failure names the tool and repeats what it said.

import Foundation
import GuardCore

public struct FirewallFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public struct FirewallRunner: Sendable {
    public let configuration: FirewallConfiguration
    public let names: FirewallNames

    public init(configuration: FirewallConfiguration) {
        self.configuration = configuration
        self.names = FirewallNames(table: configuration.table, ports: configuration.ports)
    }

    /// Whether elements expire by themselves (no removal is needed when a ban runs out).
    public var hasTimeouts: Bool { self.configuration.backend == .nftables || self.configuration.backend == .ipset }

    /// Creates the table / sets / chain, empty. The iptables jump from INPUT is added only when
    /// it is not there yet, so restarts do not pile up jumps.
    public func setup() throws(FirewallFailure) {
        switch self.configuration.backend {
        case .nftables: try self.runScript("nft", ["-f"], NftablesScript.setup(self.names))
        case .ipset: try self.runScript("ipset", ["restore", "-file"], IpsetScript.setup(self.names))
        case .iptables:
            for (list, restore) in [("iptables", "iptables-restore"), ("ip6tables", "ip6tables-restore")] {
                let jumps = try Self.output(list, ["-S"]).flatMap { FirewallInventory.iptables(rules: $0, names: self.names)?.jumps } ?? 0
                try self.runScript(restore, ["--noflush"], IptablesScript.setup(self.names, ipv6: list == "ip6tables", jump: jumps == 0))
            }
        case .command, .none: return
        }
    }

    /// Whether what the firewall holds can be read back (nftables, ipset, iptables).
    public var canReadBack: Bool { [.nftables, .ipset, .iptables].contains(self.configuration.backend) }

    /// What the firewall holds now; nil when the table, a set, the chain or its jump is gone
    /// (or cannot be listed), so that it must be set up again.
    public func held() throws(FirewallFailure) -> FirewallHeld? {
        switch self.configuration.backend {
        case .nftables:
            return try Self.output("nft", ["-j", "list", "table", "inet", self.names.table]).flatMap {
                FirewallInventory.nftables(json: $0, names: self.names)
            }
        case .ipset:
            return try Self.output("ipset", ["save"]).flatMap { FirewallInventory.ipset(save: $0, names: self.names) }
        case .iptables:
            var held: FirewallHeld = [:]
            for ipv6 in [false, true] {
                guard let rules = try Self.output(ipv6 ? "ip6tables" : "iptables", ["-S"]),
                    let found = FirewallInventory.iptables(rules: rules, names: self.names), found.jumps > 0
                else { return nil }
                // One chain per family: its rules are listed under the family's host set.
                held[ipv6 ? .v6 : .v4, default: []].formUnion(found.held)
            }
            for set in FirewallSet.allCases where held[set] == nil { held[set] = [] }
            return held
        case .command, .none:
            return nil
        }
    }

    /// A tool's standard output, or nil when it fails (a missing table makes `nft list` fail).
    static func output(_ tool: String, _ arguments: [String]) throws(FirewallFailure) -> String? {
        guard let executable = ChildProcess.find(tool) else {
            throw FirewallFailure("\(tool): not found in PATH, /usr/sbin or /sbin (install it, or choose another firewall.backend)")
        }
        do {
            let result = try ChildProcess.output(executable, arguments)
            return result.status == 0 ? result.output : nil
        } catch {
            throw FirewallFailure("\(tool): \(error)")
        }
    }

    public func apply(_ changes: [FirewallChange]) throws(FirewallFailure) {
        guard !changes.isEmpty else { return }
        switch self.configuration.backend {
        case .nftables: try self.runScript("nft", ["-f"], NftablesScript.batch(changes, names: self.names))
        case .ipset: try self.runScript("ipset", ["restore", "-file"], IpsetScript.batch(changes, names: self.names))
        case .iptables:
            for ipv6 in [false, true] {
                let script = IptablesScript.batch(changes, names: self.names, ipv6: ipv6)
                if !script.isEmpty { try self.runScript(ipv6 ? "ip6tables-restore" : "iptables-restore", ["--noflush"], script) }
            }
        case .command:
            var failures: [String] = []
            for change in changes {
                let template: String
                switch change {
                case .add: template = self.configuration.banCommand
                case .remove: template = self.configuration.unbanCommand
                }
                guard !template.isEmpty else { continue }
                let arguments = CommandTemplate.arguments(template, change: change)
                do {
                    try Self.run(arguments[0], Array(arguments.dropFirst()))
                } catch {
                    failures.append(error.description)
                }
            }
            if !failures.isEmpty { throw FirewallFailure(failures.prefix(3).joined(separator: "; ") + (failures.count > 3 ? " (and \(failures.count - 3) more)" : "")) }
        case .none: return
        }
    }

    private func runScript(_ tool: String, _ arguments: [String], _ script: String) throws(FirewallFailure) {
        let path = NSTemporaryDirectory() + "smtpguard-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).fw"
        guard FileManager.default.createFile(atPath: path, contents: Data(script.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw FirewallFailure("cannot write a temporary file in \(NSTemporaryDirectory())")
        }
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.run(tool, arguments + [path])
    }

    /// Runs a program; throws with its error output when it fails.
    public static func run(_ tool: String, _ arguments: [String]) throws(FirewallFailure) {
        guard let executable = ChildProcess.find(tool) else {
            throw FirewallFailure("\(tool): not found in PATH, /usr/sbin or /sbin (install it, or choose another firewall.backend)")
        }
        let result: (status: Int32, errors: String)
        do {
            result = try ChildProcess.run(executable, arguments)
        } catch {
            throw FirewallFailure("\(tool): \(error)")
        }
        guard result.status == 0 else {
            let text = String(result.errors.prefix(600)).trimmingCharacters(in: .whitespacesAndNewlines)
            throw FirewallFailure("\(tool) failed (status \(result.status)): \(text.isEmpty ? "no message" : text)")
        }
    }
}
