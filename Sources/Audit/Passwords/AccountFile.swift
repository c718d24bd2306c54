// The accounts of a Dovecot passwd-file (`user:{SCHEME}hash:uid:gid:gecos:home:shell:extra`)
// or a shadow file (`user:hash:lastchg:…`, crypt(3) strings, `!`/`*` for locked), as the audit
// reads them. A line that cannot be read is reported with its number; the others are kept.

public struct AccountEntry: Sendable, Equatable {
    public let username: String
    public let line: Int
    public let password: Password

    public enum Password: Sendable, Equatable {
        /// A stored hash to try candidates against.
        case stored(StoredPassword)
        /// Guessable without trying anything (blank in a shadow file, Dovecot's nopassword).
        case open(PasswordRule)
        /// Nothing to check, and why: locked, kept in another file, not set.
        case skipped(String)
        /// A value the audit cannot check, and why: an unknown scheme, a malformed hash.
        case unreadable(String)
    }
}

public struct AccountFile: Sendable {
    public let entries: [AccountEntry]
    /// Lines that are not an account.
    public let problems: [Problem]

    public struct Problem: Sendable, Equatable {
        public let line: Int
        public let message: String
    }

    /// Reads `text`. `defaultScheme` is the scheme of a password without `{…}` (CRYPT, as
    /// Dovecot's passwd-file; its `scheme=` argument can change it).
    public init(text: String, defaultScheme: String = "CRYPT") {
        var entries: [AccountEntry] = []
        var problems: [Problem] = []
        var number = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            var line = Substring(rawLine)
            if line.last == "\r" { line = line.dropLast() }
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 2, !fields[0].isEmpty else {
                problems.append(Problem(line: number, message: "not an account line (expected user:password:…)"))
                continue
            }
            let username = String(fields[0])
            let value = String(fields[1])
            let extra = fields.count > 7 ? fields[7...].joined(separator: ":") : ""
            entries.append(AccountEntry(username: username, line: number,
                                        password: Self.password(value, extraFields: extra, isShadow: Self.looksLikeShadow(fields), defaultScheme: defaultScheme)))
        }
        self.entries = entries
        self.problems = problems
    }

    /// A shadow line has 9 fields, the day of the last change in the third and numbers (or
    /// nothing) in the fourth and fifth; a passwd-file line has at most 8.
    static func looksLikeShadow(_ fields: [Substring]) -> Bool {
        fields.count == 9 && !fields[2].isEmpty && fields[2...4].allSatisfy { $0.allSatisfy(\.isNumber) }
    }

    static func password(_ value: String, extraFields: String, isShadow: Bool, defaultScheme: String) -> AccountEntry.Password {
        let nopassword = extraFields.split(separator: " ").contains { $0 == "nopassword" || $0 == "nopassword=y" || $0 == "nopassword=yes" }
        if nopassword { return .open(.noPasswordNeeded) }
        if value.isEmpty {
            // shadow: no password at all, anyone gets in; Dovecot: no password set, every login fails.
            return isShadow ? .open(.blank) : .skipped("no password set")
        }
        if value == "x" { return .skipped("the password is in the shadow file (x)") }
        if value.hasPrefix("!") || value.hasPrefix("*") { return .skipped("locked (\(value.prefix(1)))") }
        do {
            return .stored(try StoredPassword.parse(value, defaultScheme: defaultScheme))
        } catch {
            return .unreadable(error.description)
        }
    }
}
