// What `smtpguard watch` and `smtpguard replay` read, and how bans reach the firewall.

/// One log source: which formats its lines are in, and where they come from.
public struct WatchSource: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        case file
        case directory = "dir"
        case stdin
        case journald
        /// A syslog receiver (UDP or TCP) on a local address: forwarded Windows events.
        case syslog
    }

    public var formats: [String]
    public var kind: Kind
    /// file: the path; dir: the directory; journald, stdin: empty.
    public var path: String = ""
    /// dir: the file-name pattern ("*.LOG").
    public var pattern: String = "*"
    /// journald: units and syslog identifiers to follow, any of them (none: everything).
    public var units: [String] = []
    public var identifiers: [String] = []
    /// syslog: "udp" or "tcp", the address to listen on and the port.
    public var transport = "udp"
    public var host = ""
    public var port = 0

    public static let formatNames = ["postfix", "dovecot", "exim", "exchange", "events", "windows", "patterns"]

    public init(formats: [String], kind: Kind, path: String = "", pattern: String = "*", units: [String] = [], identifiers: [String] = []) {
        self.formats = formats
        self.kind = kind
        self.path = path
        self.pattern = pattern
        self.units = units
        self.identifiers = identifiers
    }

    /// `FORMAT[,FORMAT…] file:PATH | dir:DIRECTORY/PATTERN | stdin | journald[:FILTER,…] | syslog:udp|tcp:HOST:PORT`,
    /// where a journald filter is `unit=NAME`, `identifier=NAME`, or a bare unit name, and
    /// HOST is a numeric address ([::1] for IPv6).
    public init(parsing text: String) throws(ConfigValueError) {
        let parts = text.trimmingWhitespace().split(separator: " ", maxSplits: 1).map { String($0).trimmingWhitespace() }
        guard parts.count == 2, !parts[1].isEmpty else {
            throw ConfigValueError("\"\(text)\": expected \"FORMAT[,FORMAT…] file:PATH | dir:DIRECTORY/PATTERN | stdin | journald[:unit=NAME,identifier=NAME] | syslog:udp|tcp:HOST:PORT\"")
        }
        let formats = parts[0].split(separator: ",").map { String($0).lowercased() }
        for format in formats where !Self.formatNames.contains(format) {
            throw ConfigValueError("\"\(text)\": unknown format \"\(format)\" (known: \(Self.formatNames.joined(separator: ", ")))")
        }
        self.formats = formats
        let where_ = parts[1]
        if where_ == "stdin" || where_ == "-" {
            self.kind = .stdin
        } else if where_.hasPrefix("file:") {
            self.kind = .file
            self.path = String(where_.dropFirst(5))
            guard self.path.hasPrefix("/") || self.path.hasPrefix(".") || !self.path.isEmpty else { throw ConfigValueError("\"\(text)\": file: needs a path") }
        } else if where_.hasPrefix("dir:") {
            self.kind = .directory
            let rest = String(where_.dropFirst(4))
            guard let slash = rest.lastIndex(of: "/"), slash != rest.startIndex || rest.count > 1 else {
                throw ConfigValueError("\"\(text)\": dir: needs DIRECTORY/PATTERN, e.g. dir:/var/log/exchange/*.LOG")
            }
            let last = String(rest[rest.index(after: slash)...])
            if last.contains("*") || last.contains("?") || last.contains("[") {
                self.path = String(rest[..<slash])
                self.pattern = last
            } else {
                self.path = rest.hasSuffix("/") ? String(rest.dropLast()) : rest
                self.pattern = "*"
            }
        } else if where_ == "journald" || where_.hasPrefix("journald:") {
            self.kind = .journald
            for filter in where_.dropFirst(9).split(separator: ",").map({ String($0).trimmingWhitespace() }) where !filter.isEmpty {
                if filter.hasPrefix("identifier=") {
                    self.identifiers.append(String(filter.dropFirst(11)))
                } else if filter.hasPrefix("unit=") || !filter.contains("=") {
                    let unit = filter.hasPrefix("unit=") ? String(filter.dropFirst(5)) : filter
                    guard !unit.isEmpty, !unit.contains(where: { "*?[".contains($0) }) else {
                        throw ConfigValueError("\"\(text)\": name the unit exactly (postfix@-.service), patterns such as \"\(unit)\" are not matched")
                    }
                    self.units.append(unit)
                } else {
                    throw ConfigValueError("\"\(text)\": journald filters are unit=NAME or identifier=NAME, got \"\(filter)\"")
                }
            }
        } else if where_.hasPrefix("syslog:") {
            self.kind = .syslog
            let rest = where_.dropFirst(7)
            let usage = "\"\(text)\": syslog: needs udp|tcp:HOST:PORT with a numeric address, e.g. syslog:udp:0.0.0.0:5140 or syslog:tcp:[::1]:5140"
            guard rest.hasPrefix("udp:") || rest.hasPrefix("tcp:") else { throw ConfigValueError(usage) }
            self.transport = String(rest.prefix(3))
            let address = rest.dropFirst(4)
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) else { throw ConfigValueError(usage) }
            var host = String(address[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard IPAddress(host) != nil else { throw ConfigValueError(usage) }
            self.host = host
            self.port = port
        } else {
            throw ConfigValueError("\"\(text)\": the source must be file:PATH, dir:DIRECTORY/PATTERN, stdin, journald[:…] or syslog:udp|tcp:HOST:PORT, got \"\(where_)\"")
        }
    }

    public var description: String {
        let formats = self.formats.joined(separator: ",")
        switch self.kind {
        case .file: return "\(formats) file:\(self.path)"
        case .directory: return "\(formats) dir:\(self.path)/\(self.pattern)"
        case .stdin: return "\(formats) stdin"
        case .journald:
            let filters = self.units.map { "unit=\($0)" } + self.identifiers.map { "identifier=\($0)" }
            return "\(formats) journald" + (filters.isEmpty ? "" : ":" + filters.joined(separator: ","))
        case .syslog:
            return "\(formats) syslog:\(self.transport):" + (self.host.contains(":") ? "[\(self.host)]" : self.host) + ":\(self.port)"
        }
    }
}

public struct WatchConfiguration: Sendable, Equatable {
    public var sources: [WatchSource] = []
    /// Regular expressions for the "patterns" format: (?<address>…) and optionally (?<username>…).
    public var patterns: [String] = []
    /// Where each file's position is kept, to resume after a restart; empty: start at the end.
    public var positions = "smtpguard.positions"
    /// With no saved position, read files from their start instead of their end.
    public var fromStart = false
    public var pollInterval: Duration = .milliseconds(100)
    /// A source that reads no line for this long raises an alert (and shows as silent in the
    /// metrics) until it reads again; zero: never.
    public var silenceAlert: Duration = .seconds(3600)
    public var journalctl = "journalctl"
    public var maxLineLength = 16 * 1024
    public init() {}
}

public struct FirewallConfiguration: Sendable, Equatable {
    public enum Backend: String, Sendable, Equatable, CaseIterable {
        case none
        case nftables
        case ipset
        case iptables
        case command
    }

    public var backend: Backend = .none
    /// nftables table, ipset set-name prefix, iptables chain (upper-cased).
    public var table = "smtpguard"
    public var ports: [Int] = [25, 465, 587]
    public var banCommand = ""
    public var unbanCommand = ""
    /// Plain-text ban list over HTTP (GET /bans): HOST:PORT, empty for off.
    public var banlistListen = ""
    /// How often the watcher reads back what the firewall holds and puts back what is missing
    /// (its table after `systemctl restart nftables`, elements flushed by hand); zero: never.
    public var checkInterval: Duration = .seconds(30)
    public init() {}
}
