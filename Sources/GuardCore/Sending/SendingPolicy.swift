// What an authenticated user may send: messages and recipients per minute, hour and day,
// with defaults for everyone and overrides per user, per domain or per group. It contains
// a compromised account whatever way its password leaked (the proxy and the Postfix policy
// server both ask it).

/// Limits for one user; 0 means no limit for that window.
public struct SendingLimits: Sendable, Hashable {
    public var messagesPerMinute = 30
    public var messagesPerHour = 200
    public var messagesPerDay = 1000
    public var recipientsPerMinute = 60
    public var recipientsPerHour = 500
    public var recipientsPerDay = 2000

    public init() {}

    /// The names used in configuration overrides, with where each lives.
    public static var fields: [(name: String, keyPath: WritableKeyPath<SendingLimits, Int>, window: SendingWindow, counts: SendingCount)] { [
        ("messages_per_minute", \.messagesPerMinute, .minute, .messages),
        ("messages_per_hour", \.messagesPerHour, .hour, .messages),
        ("messages_per_day", \.messagesPerDay, .day, .messages),
        ("recipients_per_minute", \.recipientsPerMinute, .minute, .recipients),
        ("recipients_per_hour", \.recipientsPerHour, .hour, .recipients),
        ("recipients_per_day", \.recipientsPerDay, .day, .recipients),
    ] }

    public func limit(_ counts: SendingCount, _ window: SendingWindow) -> Int {
        switch (counts, window) {
        case (.messages, .minute): return self.messagesPerMinute
        case (.messages, .hour): return self.messagesPerHour
        case (.messages, .day): return self.messagesPerDay
        case (.recipients, .minute): return self.recipientsPerMinute
        case (.recipients, .hour): return self.recipientsPerHour
        case (.recipients, .day): return self.recipientsPerDay
        }
    }

    /// Largest value a limit may take (a window slot counts up to 2^32).
    public static let maximum = 100_000_000
}

public enum SendingWindow: Int, Sendable, Hashable, CaseIterable {
    case minute, hour, day

    public var duration: Duration {
        switch self {
        case .minute: return .seconds(60)
        case .hour: return .seconds(3600)
        case .day: return .seconds(86_400)
        }
    }

    /// "1 minute", "60 minutes", "1440 minutes": the alert's words.
    public var minutes: Int { Int(self.duration.wholeSeconds / 60) }
}

public enum SendingCount: String, Sendable, Hashable {
    case messages
    case recipients
}

/// A named set of users (`bulk: newsletter@example.com crm@example.com @lists.example.com`).
public struct SendingGroup: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// Normalised usernames, and domains as `@domain`.
    public var members: [String]

    public init(name: String, members: [String]) {
        self.name = name
        self.members = members
    }

    /// `NAME: MEMBER MEMBER …`, members separated by spaces or commas.
    public init(parsing text: String) throws(ConfigValueError) {
        guard let colon = text.firstIndex(of: ":") else {
            throw ConfigValueError("\"\(text)\": expected \"NAME: USER @DOMAIN …\"")
        }
        let name = String(text[..<colon]).trimmingWhitespace().lowercased()
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw ConfigValueError("\"\(text)\": a group name is letters, digits, - and _")
        }
        let members = text[text.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }).map { String($0).lowercased() }
        guard !members.isEmpty else { throw ConfigValueError("\"\(text)\": the group \(name) has no members") }
        self.init(name: name, members: members)
    }

    public var description: String { "\(self.name): \(self.members.joined(separator: " "))" }
}

/// Limits for some users: `alice@example.com: recipients_per_day=5000`, `@example.org: …`,
/// `group:bulk: …`. Windows not named keep the defaults.
public struct SendingOverride: Sendable, Hashable, CustomStringConvertible {
    public enum Selector: Sendable, Hashable, CustomStringConvertible {
        case user(String)
        case domain(String)
        case group(String)

        public var description: String {
            switch self {
            case .user(let name): return name
            case .domain(let domain): return "@" + domain
            case .group(let name): return "group:" + name
            }
        }
    }

    /// One window's limit: a name of `SendingLimits.fields` and its value.
    public struct Setting: Sendable, Hashable {
        public var name: String
        public var value: Int
    }

    public var selector: Selector
    public var values: [Setting]

    public init(parsing text: String) throws(ConfigValueError) {
        let trimmed = text.trimmingWhitespace()
        // The selector ends at the last colon before the first "=" (group:NAME has one of its own).
        let head = trimmed.firstIndex(of: "=").map { trimmed[..<$0] } ?? trimmed[...]
        guard let colon = head.lastIndex(of: ":") else {
            throw ConfigValueError("\"\(text)\": expected \"USER|@DOMAIN|group:NAME: recipients_per_hour=N …\"")
        }
        let selector = String(trimmed[..<colon]).trimmingWhitespace().lowercased()
        if selector.hasPrefix("group:") {
            let name = String(selector.dropFirst(6))
            guard !name.isEmpty else { throw ConfigValueError("\"\(text)\": group: needs a group name") }
            self.selector = .group(name)
        } else if selector.hasPrefix("@") {
            guard selector.count > 1 else { throw ConfigValueError("\"\(text)\": @ needs a domain") }
            self.selector = .domain(String(selector.dropFirst()))
        } else {
            guard !selector.isEmpty, !selector.contains(" ") else { throw ConfigValueError("\"\(text)\": expected a username, @domain or group:NAME before the colon") }
            self.selector = .user(selector)
        }
        var values: [Setting] = []
        for item in trimmed[trimmed.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }) {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, SendingLimits.fields.contains(where: { $0.name == parts[0] }) else {
                throw ConfigValueError(
                    "\"\(text)\": \"\(item)\" is not NAME=N with NAME one of \(SendingLimits.fields.map(\.name).joined(separator: ", "))")
            }
            guard let number = Int(parts[1].replacingUnderscores), (0...SendingLimits.maximum).contains(number) else {
                throw ConfigValueError("\"\(text)\": \(parts[0]) must be a whole number from 0 (no limit) to \(SendingLimits.maximum)")
            }
            values.append(Setting(name: parts[0], value: number))
        }
        guard !values.isEmpty else { throw ConfigValueError("\"\(text)\": names no limit") }
        self.values = values
    }

    public var description: String {
        "\(self.selector): " + self.values.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
    }

    func apply(to limits: inout SendingLimits) {
        for setting in self.values {
            if let field = SendingLimits.fields.first(where: { $0.name == setting.name }) { limits[keyPath: field.keyPath] = setting.value }
        }
    }
}

/// The sending limits of every user, and what happens past them.
public struct SendingPolicy: Sendable, Equatable {
    /// Count and limit what authenticated users send (proxy and Postfix policy).
    public var enabled = true
    public var defaults = SendingLimits()
    public var groups: [SendingGroup] = []
    public var overrides: [SendingOverride] = []
    /// Past a limit, also lock the account's AUTH until an operator lifts the lock.
    public var lockAccount = false
    /// A user over a limit raises at most one alert in this time.
    public var alertInterval: Duration = .seconds(3600)

    public init() {}

    /// How long a lock for a sending limit lasts: until an operator lifts it (a century).
    public static let lockDuration: Duration = .seconds(100 * 365 * 86_400)

    /// The limits for one normalised username: its own override, else its groups' (the
    /// first group listed wins), else its domain's, else the defaults. An override changes
    /// only the windows it names.
    public func limits(for username: String) -> SendingLimits {
        var limits = self.defaults
        let domain = username.firstIndex(of: "@").map { String(username[username.index(after: $0)...]) }
        if let domain, let override = self.overrides.first(where: { $0.selector == .domain(domain) }) {
            override.apply(to: &limits)
        }
        for group in self.groups.reversed() where group.members.contains(username) || (domain.map { group.members.contains("@" + $0) } ?? false) {
            if let override = self.overrides.first(where: { $0.selector == .group(group.name) }) { override.apply(to: &limits) }
        }
        if let override = self.overrides.first(where: { $0.selector == .user(username) }) {
            override.apply(to: &limits)
        }
        return limits
    }
}
