// The default credentials spam bots try first, from the seed articles (SpamCop's FAQ,
// citing ROKSO, and Windows IT Pro): the usernames they hammer and the passwords they try
// with each, including the ones derived from the username and the blank password.

public enum DefaultCredentials {
    /// Usernames known to be tried by password-guessing bots.
    public static let usernames: Set<String> = [
        "webmaster", "admin", "root", "test", "master", "web", "www", "administrator",
        "backup", "server", "data", "abc", "guest", "demo",
    ]

    /// Passwords known to be tried, besides the ones derived from the username.
    public static let passwords: Set<String> = [
        "", "1", "111", "123", "1234", "12345", "123456", "1234567", "12345678", "654321", "54321",
        "00000000", "88888888", "admin", "root", "pass", "passwd", "password", "super", "!@#$%^&*",
    ]

    /// The local part of a username (before `@`), lower-cased: what `${username}` means.
    public static func localPart(of username: String) -> String {
        let trimmed = username.trimmingWhitespace().lowercased()
        if let at = trimmed.firstIndex(of: "@") { return String(trimmed[..<at]) }
        return trimmed
    }

    public static func isDefaultUsername(_ username: String) -> Bool {
        self.usernames.contains(self.localPart(of: username))
    }

    /// The same for a username already trimmed and lower-cased (no copy unless it has a domain).
    static func isDefaultNormalizedUsername(_ username: String) -> Bool {
        if let at = username.utf8.firstIndex(of: UInt8(ascii: "@")) {
            return self.usernames.contains(String(username[..<at]))
        }
        return self.usernames.contains(username)
    }

    /// True for a password on the list, or `${username}`, `${username}12`, `${username}123`
    /// (the username's local part or the whole username, compared without case).
    public static func isDefaultPassword(_ password: String, username: String) -> Bool {
        let lowered = password.lowercased()
        if self.passwords.contains(password) || self.derived(from: username).contains(lowered) { return true }
        let local = self.localPart(of: username)
        return local.count > 1 && lowered == String(local.reversed())
    }

    /// Every password `isDefaultPassword` would recognise for `username`, as it could be
    /// typed: the list, and the derived ones in lower case, capitalised and reversed.
    public static func candidates(for username: String) -> [String] {
        var result = Array(self.passwords)
        for derived in self.derived(from: username) {
            result.append(derived)
            let capitalised = derived.prefix(1).uppercased() + derived.dropFirst()
            if capitalised != derived { result.append(capitalised) }
        }
        let local = self.localPart(of: username)
        if local.count > 1 { result.append(String(local.reversed())) }
        return result
    }

    /// `${username}`, `${username}12`, `${username}123`, for the local part and the whole name.
    static func derived(from username: String) -> [String] {
        let whole = username.trimmingWhitespace().lowercased()
        return Set([self.localPart(of: username), whole]).filter { !$0.isEmpty }.flatMap { [$0, $0 + "12", $0 + "123"] }
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs, CR and LF.
    public func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard let first = self.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = self.lastIndex(where: { !isSpace($0) })!
        return String(self[first...last])
    }
}
