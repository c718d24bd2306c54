// The sockets one configuration opens: each listener with its key and the commands that open
// it, and the pairs of them that cannot both be bound. `config check` and every start report
// a clash by both keys, instead of one server failing "address in use" at start.

/// Every listener a configuration names, and which of them clash.
public struct ListenerPlan: Sendable {
    public struct Listener: Sendable, Equatable {
        public var key: String
        public var endpoint: Endpoint
        /// The commands that open it (run, watch, policy).
        public var commands: [String]
    }

    public enum Endpoint: Sendable, Equatable, CustomStringConvertible {
        case tcp(HostPort)
        case unix(String)

        public var isUnix: Bool {
            if case .unix = self { return true }
            return false
        }

        public var description: String {
            switch self {
            case .tcp(let address): return address.description
            case .unix(let path): return "unix:" + path
            }
        }
    }

    public var listeners: [Listener]

    public init(_ configuration: GuardConfiguration) {
        let all = ["run", "watch", "policy"]
        var listeners: [Listener] = []
        func add(_ key: String, _ text: String, _ commands: [String]) {
            if text.hasPrefix("unix:") {
                listeners.append(Listener(key: key, endpoint: .unix(String(text.dropFirst(5))), commands: commands))
            } else if let address = HostPort(text) {
                listeners.append(Listener(key: key, endpoint: .tcp(address), commands: commands))
            }
        }
        for address in configuration.proxy.listen { add("listen", address.description, ["run"]) }
        for address in configuration.proxy.listenTLS { add("listen_tls", address.description, ["run"]) }
        add("admin.listen", configuration.admin.listen, all)
        add("dovecot_policy.listen", configuration.dovecotPolicy.listen, all)
        for text in configuration.postfixPolicy.listen { add("postfix_policy.listen", text, all) }
        add("firewall.banlist_listen", configuration.firewall.banlistListen, ["watch"])
        self.listeners = listeners
    }

    /// Pairs that one command would both open and that cannot share their address: the
    /// same port on the same address, or on an address and the wildcard of its family
    /// (0.0.0.0, ::). IPv6 listeners are IPv6-only, so `0.0.0.0:P` beside `[::]:P` is fine.
    public var clashes: [(key: String, message: String)] {
        var found: [(String, String)] = []
        for (i, first) in self.listeners.enumerated() {
            for second in self.listeners[(i + 1)...] {
                let together = first.commands.filter(second.commands.contains)
                guard !together.isEmpty, Self.overlap(first.endpoint, second.endpoint) else { continue }
                let same = first.endpoint == second.endpoint ? "the same address" : "overlapping addresses (a wildcard and an address of its family)"
                found.append((
                    second.key,
                    "\(second.endpoint) and \(first.key) \(first.endpoint) are \(same); only one server can listen there "
                        + "(`smtpguard \(together.joined(separator: "`, `smtpguard "))` would start both). Give each its own \(second.endpoint.isUnix ? "path" : "port")"
                ))
            }
        }
        return found
    }

    static func overlap(_ a: Endpoint, _ b: Endpoint) -> Bool {
        switch (a, b) {
        case (.unix(let x), .unix(let y)): return x == y
        case (.tcp(let x), .tcp(let y)):
            guard x.port == y.port, x.port != 0, x.isIPv6 == y.isIPv6 else { return false }
            let hosts = [x.host, y.host].map { $0.lowercased() }
            if hosts.contains(where: { $0 == "0.0.0.0" || $0 == "::" || $0 == "*" }) { return true }
            if let p = IPAddress(hosts[0]), let q = IPAddress(hosts[1]) { return p == q }
            return hosts[0] == hosts[1]
        default: return false
        }
    }
}

extension GuardConfiguration {
    /// Secrets left as the examples' placeholders ("change-me-…", "<a long random string>").
    public var placeholderSecrets: [(key: String, message: String)] {
        Self.keys.filter { $0.help.contains("A secret:") }.compactMap { key in
            let value = key.render(self).lowercased()
            let markers = ["change-me", "changeme", "change_me", "replace-me", "replaceme", "<the same", "<a long", "<password", "<secret"]
            guard markers.contains(where: value.contains) else { return nil }
            return (key.path, "is still the example's placeholder: put a long random secret here (e.g. from `openssl rand -hex 24`), and the same on the other side")
        }
    }
}
