// What makes a password guessable, after the seed articles: a blank password, one on the list
// the bots try (SpamCop's `1, 111, 123 … password, super`), one made from the username
// (`${username}`, `${username}12`, `${username}123`, reversed, in any case), one in a list of
// common passwords (John the Ripper's password.lst), and one too short (15 characters for an
// administrator, as the first article advises). `check-password` refuses such a password;
// `audit-passwords` tries them, most likely first, against stored hashes.

import GuardCore

/// The rule that found a password guessable.
public enum PasswordRule: Sendable, Hashable, CustomStringConvertible {
    case blank
    case noPasswordNeeded
    case defaultList
    case derivedFromUsername(String)
    case wordlist(String)
    case tooShort(minimum: Int)

    /// A stable name for scripts.
    public var code: String {
        switch self {
        case .blank: "blank"
        case .noPasswordNeeded: "no_password_needed"
        case .defaultList: "default_list"
        case .derivedFromUsername: "derived_from_username"
        case .wordlist: "wordlist"
        case .tooShort: "too_short"
        }
    }

    public var description: String {
        switch self {
        case .blank: "the password is blank"
        case .noPasswordNeeded: "no password is needed (nopassword)"
        case .defaultList: "on the list of default passwords spam bots try"
        case .derivedFromUsername(let form): "made from the username (\(form))"
        case .wordlist(let name): "in the common-password list \(name)"
        case .tooShort(let minimum): "shorter than \(minimum) characters"
        }
    }
}

public struct PasswordCandidate: Sendable, Equatable {
    public let password: String
    public let rule: PasswordRule
}

public struct PasswordRules: Sendable {
    public var wordlist: Wordlist?
    public var minimumLength: Int
    public var administratorMinimumLength: Int

    /// Accounts held to the administrators' minimum without being told (their local part).
    public static let administratorNames: Set<String> = [
        "admin", "administrator", "root", "postmaster", "hostmaster", "webmaster", "sysadmin",
    ]

    /// Appended to the username by people who think it makes a password.
    static let suffixes = ["", "1", "12", "123", "1234", "!"]

    public init(wordlist: Wordlist? = nil, minimumLength: Int = 10, administratorMinimumLength: Int = 15) {
        self.wordlist = wordlist
        self.minimumLength = minimumLength
        self.administratorMinimumLength = administratorMinimumLength
    }

    public static func isAdministrator(_ username: String) -> Bool {
        Self.administratorNames.contains(DefaultCredentials.localPart(of: username))
    }

    /// The first rule that refuses `password` for `username`, or nil. Comparisons ignore case:
    /// `Password` and `ALICE123` are as weak as `password` and `alice123`.
    public func refusal(of password: String, username: String?, administrator: Bool) -> PasswordRule? {
        if password.isEmpty { return .blank }
        let lowered = password.lowercased()
        if let username, let form = Self.derivedForms(of: username).first(where: { $0.value == lowered }) {
            return .derivedFromUsername(form.form)
        }
        if Self.defaultListLowercased.contains(lowered) { return .defaultList }
        if let wordlist, wordlist.containsIgnoringCase(lowered) { return .wordlist(wordlist.name) }
        let minimum = administrator || username.map(Self.isAdministrator) == true
            ? self.administratorMinimumLength : self.minimumLength
        if password.count < minimum { return .tooShort(minimum: minimum) }
        return nil
    }

    /// The passwords to try against `username`'s stored hash, most likely first, each once,
    /// with the rule that would name it: blank, made from the username (as typed: lower case,
    /// capitalised, capitals), the default list, then the wordlist as it is.
    public func candidates(for username: String) -> [PasswordCandidate] {
        var seen: Set<String> = []
        var result: [PasswordCandidate] = []
        func add(_ password: String, _ rule: PasswordRule) {
            if seen.insert(password).inserted { result.append(PasswordCandidate(password: password, rule: rule)) }
        }
        add("", .blank)
        for form in Self.derivedForms(of: username) {
            add(form.value, .derivedFromUsername(form.form))
            if form.reversible {
                let capitalised = form.value.prefix(1).uppercased() + form.value.dropFirst()
                add(capitalised, .derivedFromUsername(form.form + ", capitalised"))
                add(form.value.uppercased(), .derivedFromUsername(form.form + ", in capitals"))
            }
        }
        for password in DefaultCredentials.passwords.sorted(by: Self.shortestFirst) { add(password, .defaultList) }
        if let wordlist { for word in wordlist.words { add(word, .wordlist(wordlist.name)) } }
        return result
    }

    private static func shortestFirst(_ a: String, _ b: String) -> Bool { a.count != b.count ? a.count < b.count : a < b }

    static let defaultListLowercased = Set(DefaultCredentials.passwords.map { $0.lowercased() })

    struct DerivedForm {
        let value: String     // lower case
        let form: String      // how a person would write the rule: ${username}123
        let reversible: Bool  // has case variants worth trying
    }

    /// `${username}` plus each suffix, for the local part and the whole name, and the username
    /// reversed; all in lower case.
    static func derivedForms(of username: String) -> [DerivedForm] {
        let whole = username.trimmingWhitespace().lowercased()
        let local = DefaultCredentials.localPart(of: username)
        var forms: [DerivedForm] = []
        var names = [(local, "${username}")]
        if whole != local { names.append((whole, "${user@domain}")) }  // the whole login name, domain and all
        for (name, placeholder) in names where !name.isEmpty {
            for suffix in Self.suffixes {
                forms.append(DerivedForm(value: name + suffix, form: placeholder + suffix, reversible: true))
            }
        }
        if local.count > 1 {
            let reversed = String(local.reversed())
            if reversed != local { forms.append(DerivedForm(value: reversed, form: "the username reversed", reversible: true)) }
        }
        return forms
    }
}
