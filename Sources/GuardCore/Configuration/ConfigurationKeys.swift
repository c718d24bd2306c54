// Every configuration key, once: its dotted path, its help text, how it is read and how its
// default is shown. The YAML loader, `smtpguard config defaults`, `config check` and the
// README's reference are all driven by this one table.

/// A value as the configuration file gives it, before it is typed.
public enum ConfigValue: Sendable, Equatable {
    case scalar(String)
    case list([String])
}

/// What was wrong with one value, in words for the administrator.
public struct ConfigValueError: Error, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// One problem in a configuration file: the key, the line, and what is wrong.
public struct ConfigurationIssue: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var key: String
    public var message: String

    public init(file: String, line: Int?, key: String, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        let place = self.line.map { "\(self.file):\($0)" } ?? self.file
        return self.key.isEmpty ? "\(place): \(self.message)" : "\(place): \(self.key): \(self.message)"
    }
}

public struct ConfigurationKey {
    public let path: String
    public let help: String
    public let render: (GuardConfiguration) -> String
    public let apply: (inout GuardConfiguration, ConfigValue) throws -> Void
    /// True for keys whose value is a list.
    public let isList: Bool
}

extension ConfigurationKey {
    // MARK: - Typed keys

    static func int(
        _ path: String, _ help: String, _ keyPath: WritableKeyPath<GuardConfiguration, Int>, _ range: ClosedRange<Int>,
        only allowed: [Int]? = nil
    ) -> ConfigurationKey {
        ConfigurationKey(
            path: path, help: help, render: { String($0[keyPath: keyPath]) },
            apply: { config, value in
                let text = try scalar(value)
                guard let number = Int(text.replacingUnderscores) else { throw ConfigValueError("expected a whole number, got \"\(text)\"") }
                if let allowed, !allowed.contains(number) {
                    throw ConfigValueError("must be one of \(allowed.map(String.init).joined(separator: ", ")), got \(number)")
                }
                guard range.contains(number) else {
                    throw ConfigValueError("\(number) is out of range \(range.lowerBound)…\(range.upperBound)")
                }
                config[keyPath: keyPath] = number
            }, isList: false)
    }

    static func double(
        _ path: String, _ help: String, _ keyPath: WritableKeyPath<GuardConfiguration, Double>, _ range: ClosedRange<Double>
    ) -> ConfigurationKey {
        ConfigurationKey(
            path: path, help: help, render: { formatDouble($0[keyPath: keyPath]) },
            apply: { config, value in
                let text = try scalar(value)
                let number: Double?
                if text.hasSuffix("%") { number = Double(text.dropLast()).map { $0 / 100 } } else { number = Double(text) }
                guard let number, number.isFinite else { throw ConfigValueError("expected a number, got \"\(text)\"") }
                guard range.contains(number) else {
                    throw ConfigValueError("\(text) is out of range \(formatDouble(range.lowerBound))…\(formatDouble(range.upperBound))")
                }
                config[keyPath: keyPath] = number
            }, isList: false)
    }

    static func duration(
        _ path: String, _ help: String, _ keyPath: WritableKeyPath<GuardConfiguration, Duration>,
        min: Duration = .zero, max: Duration = .seconds(10 * 365 * 86_400)
    ) -> ConfigurationKey {
        ConfigurationKey(
            path: path, help: help, render: { $0[keyPath: keyPath].compactText },
            apply: { config, value in
                let text = try scalar(value)
                guard let duration = parseDuration(text) else {
                    throw ConfigValueError("expected a duration such as 500ms, 30s, 10m, 24h or 7d, got \"\(text)\"")
                }
                guard duration >= min, duration <= max else {
                    throw ConfigValueError("\(text) is out of range \(min.compactText)…\(max.compactText)")
                }
                config[keyPath: keyPath] = duration
            }, isList: false)
    }

    static func string(
        _ path: String, _ help: String, _ keyPath: WritableKeyPath<GuardConfiguration, String>,
        validate: @escaping (String) -> String? = { _ in nil }
    ) -> ConfigurationKey {
        ConfigurationKey(
            path: path, help: help, render: { yamlQuoted($0[keyPath: keyPath]) },
            apply: { config, value in
                let text = try scalar(value)
                if text.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) {
                    throw ConfigValueError("must be one line without control characters")
                }
                if let problem = validate(text) { throw ConfigValueError(problem) }
                config[keyPath: keyPath] = text
            }, isList: false)
    }

    static func choice<E: RawRepresentable & CaseIterable>(
        _ path: String, _ help: String, _ keyPath: WritableKeyPath<GuardConfiguration, E>
    ) -> ConfigurationKey where E.RawValue == String {
        ConfigurationKey(
            path: path, help: help, render: { $0[keyPath: keyPath].rawValue },
            apply: { config, value in
                let text = try scalar(value)
                guard let choice = E(rawValue: text.lowercased()) else {
                    throw ConfigValueError("expected one of \(E.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(text)\"")
                }
                config[keyPath: keyPath] = choice
            }, isList: false)
    }

    static func networks(
        _ path: String, _ help: String, _ keyPath: WritableKeyPath<GuardConfiguration, NetworkList>
    ) -> ConfigurationKey {
        ConfigurationKey(
            path: path, help: help, render: { yamlList($0[keyPath: keyPath].networks.map(\.description)) },
            apply: { config, value in
                var networks: [IPNetwork] = []
                for text in try list(value) {
                    guard let network = IPNetwork(text) else {
                        throw ConfigValueError("\"\(text)\" is not an address or network (e.g. 192.0.2.0/24, 2001:db8::/32)")
                    }
                    networks.append(network)
                }
                config[keyPath: keyPath] = NetworkList(networks)
            }, isList: true)
    }

    static func strings(
        _ path: String, _ help: String, _ keyPath: WritableKeyPath<GuardConfiguration, [String]>
    ) -> ConfigurationKey {
        ConfigurationKey(
            path: path, help: help, render: { yamlList($0[keyPath: keyPath]) },
            apply: { config, value in config[keyPath: keyPath] = try list(value) }, isList: true)
    }

    static func hostPort(
        _ path: String, _ help: String, _ keyPath: WritableKeyPath<GuardConfiguration, HostPort>
    ) -> ConfigurationKey {
        ConfigurationKey(
            path: path, help: help, render: { $0[keyPath: keyPath].description },
            apply: { config, value in
                let text = try scalar(value)
                guard let hostPort = HostPort(text) else { throw ConfigValueError("expected HOST:PORT (IPv6 as [::1]:25), got \"\(text)\"") }
                config[keyPath: keyPath] = hostPort
            }, isList: false)
    }

    static func bool(_ path: String, _ help: String, _ keyPath: WritableKeyPath<GuardConfiguration, Bool>) -> ConfigurationKey {
        ConfigurationKey(
            path: path, help: help, render: { $0[keyPath: keyPath] ? "true" : "false" },
            apply: { config, value in
                let text = try scalar(value)
                switch text.lowercased() {
                case "true", "yes", "on": config[keyPath: keyPath] = true
                case "false", "no", "off": config[keyPath: keyPath] = false
                default: throw ConfigValueError("expected true or false, got \"\(text)\"")
                }
            }, isList: false)
    }

    static func hostPorts(
        _ path: String, _ help: String, _ keyPath: WritableKeyPath<GuardConfiguration, [HostPort]>, allowEmpty: Bool = false
    ) -> ConfigurationKey {
        ConfigurationKey(
            path: path, help: help, render: { yamlList($0[keyPath: keyPath].map(\.description)) },
            apply: { config, value in
                var result: [HostPort] = []
                for text in try list(value) {
                    guard let hostPort = HostPort(text) else { throw ConfigValueError("expected HOST:PORT (IPv6 as [::1]:25), got \"\(text)\"") }
                    result.append(hostPort)
                }
                guard allowEmpty || !result.isEmpty else { throw ConfigValueError("needs at least one HOST:PORT") }
                config[keyPath: keyPath] = result
            }, isList: true)
    }

    static func mechanisms(
        _ path: String, _ help: String, _ keyPath: WritableKeyPath<GuardConfiguration, [AuthMechanism]>
    ) -> ConfigurationKey {
        ConfigurationKey(
            path: path, help: help, render: { yamlList($0[keyPath: keyPath].map(\.rawValue)) },
            apply: { config, value in
                var result: [AuthMechanism] = []
                for text in try list(value) {
                    let mechanism = AuthMechanism(name: text)
                    guard mechanism != .other else { throw ConfigValueError("unknown mechanism \"\(text)\": use PLAIN, LOGIN or CRAM-MD5") }
                    if !result.contains(mechanism) { result.append(mechanism) }
                }
                config[keyPath: keyPath] = result
            }, isList: true)
    }

    // MARK: - Value helpers

    static func scalar(_ value: ConfigValue) throws -> String {
        guard case .scalar(let text) = value else { throw ConfigValueError("expected a single value, got a list") }
        return text
    }

    static func list(_ value: ConfigValue) throws -> [String] {
        switch value {
        case .list(let items): return items
        case .scalar(let text):
            // A single value, or a comma-separated one from a flag or environment, is a list of one or more.
            return text.isEmpty ? [] : text.split(separator: ",").map { String($0).trimmingWhitespace() }
        }
    }
}

/// Parses `500ms`, `30s`, `10m`, `24h`, `7d`, `2w` and sums such as `1h30m`. A bare number is seconds.
public func parseDuration(_ text: String) -> Duration? {
    let trimmed = text.trimmingWhitespace().lowercased()
    guard !trimmed.isEmpty else { return nil }
    if let seconds = Int64(trimmed), seconds >= 0 { return .seconds(seconds) }
    var total: Int64 = 0
    var number: Int64?
    var chars = Array(trimmed)
    chars.append(" ")
    var i = 0
    while i < chars.count - 1 {
        let c = chars[i]
        if let digit = c.wholeNumberValue, c.isASCII {
            let (scaled, o1) = (number ?? 0).multipliedReportingOverflow(by: 10)
            let (sum, o2) = scaled.addingReportingOverflow(Int64(digit))
            if o1 || o2 { return nil }
            number = sum
            i += 1
            continue
        }
        guard let value = number else { return nil }
        let unitMillis: Int64
        if c == "m" && chars[i + 1] == "s" {
            unitMillis = 1
            i += 2
        } else {
            switch c {
            case "s": unitMillis = 1000
            case "m": unitMillis = 60_000
            case "h": unitMillis = 3_600_000
            case "d": unitMillis = 86_400_000
            case "w": unitMillis = 604_800_000
            default: return nil
            }
            i += 1
        }
        let (part, overflow) = value.multipliedReportingOverflow(by: unitMillis)
        if overflow { return nil }
        total += part
        number = nil
    }
    guard number == nil else { return nil }  // "10m5": a trailing number without unit
    return .milliseconds(total)
}

func formatDouble(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
}

/// A YAML scalar, quoted when plain style would change its meaning.
public func yamlQuoted(_ text: String) -> String {
    let special: Set<Character> = [":", "#", "{", "}", "[", "]", ",", "&", "*", "!", "|", ">", "'", "\"", "%", "@", "`"]
    let needsQuotes = text.isEmpty || text.first == " " || text.last == " " || text.first == "-" || text.first == "?"
        || text.contains(where: { special.contains($0) || $0.asciiValue.map { $0 < 0x20 } ?? false })
        || ["yes", "no", "true", "false", "on", "off", "null", "~"].contains(text.lowercased())
    if !needsQuotes { return text }
    var out = ""
    JSONObjectWriter.appendQuoted(text, to: &out)
    return out
}

func yamlList(_ items: [String]) -> String {
    "[" + items.map(yamlQuoted).joined(separator: ", ") + "]"
}

extension String {
    var replacingUnderscores: String { self.filter { $0 != "_" } }
}
