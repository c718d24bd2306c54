// The verdict of `smtpguard check-password` on one password: accepted or the rule that
// refused it, as a line for people or JSON for programs, and the exit status. Pure; it
// holds the refusal's rule and reason, never the password.

import GuardCore

public struct PasswordCheckReport: Sendable {
    public let refusal: PasswordRule?
    public let username: String?
    public let administrator: Bool
    /// The shortest length this account is held to.
    public let minimumLength: Int
    public let wordlist: Wordlist?

    public init(refusal: PasswordRule?, username: String?, administrator: Bool, minimumLength: Int, wordlist: Wordlist?) {
        self.refusal = refusal
        self.username = username
        self.administrator = administrator
        self.minimumLength = minimumLength
        self.wordlist = wordlist
    }

    /// 0 accepted, 2 refused.
    public var exitStatus: Int32 { self.refusal == nil ? AuditExitStatus.pass : AuditExitStatus.failures }

    public func text() -> String {
        if let refusal { return "refused: \(refusal.description)" }
        var checked = ["not blank", "not a bots' default"]
        if self.username != nil { checked.append("not made from the username") }
        if let wordlist { checked.append("not in \(wordlist.name) (\(wordlist.words.count) words)") }
        checked.append("at least \(self.minimumLength) characters")
        return "accepted: " + checked.joined(separator: ", ")
    }

    public func json() -> String {
        var out = JSONObjectWriter()
        out.bool("accepted", self.refusal == nil)
        if let refusal {
            out.string("rule", refusal.code)
            out.string("reason", refusal.description)
        }
        if let username { out.string("username", username) }
        out.bool("administrator", self.administrator)
        out.int("minimum_length", self.minimumLength)
        if let wordlist {
            out.string("wordlist", wordlist.path)
            out.int("wordlist_words", wordlist.words.count)
        }
        return out.finish()
    }
}
