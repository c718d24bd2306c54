// The report of `smtpguard audit-passwords`: each account's verdict classified, the exit
// status, a table for people and JSON for programs. Pure: it formats what PasswordAudit found.
// A guessed password appears only when `showPasswords` is set (the operator asked for it).

import Foundation
import GuardCore

public struct PasswordAuditReport: Sendable {
    public let file: String
    public let wordlist: Wordlist?
    public let verdicts: [AccountVerdict]
    public let problems: [AccountFile.Problem]
    public let seconds: Double
    public let jobs: Int
    public let showPasswords: Bool

    public init(
        file: String, wordlist: Wordlist?, verdicts: [AccountVerdict], problems: [AccountFile.Problem], seconds: Double, jobs: Int,
        showPasswords: Bool
    ) {
        self.file = file
        self.wordlist = wordlist
        self.verdicts = verdicts
        self.problems = problems
        self.seconds = seconds
        self.jobs = jobs
        self.showPasswords = showPasswords
    }

    /// Candidates tried, over all accounts.
    public var checks: Int { self.verdicts.reduce(0) { $0 + $1.tried } }

    /// How many verdicts have this result (`guessable`, `not_guessed`, `unfinished`, `skipped`, `unreadable`).
    public func count(_ result: String) -> Int { self.verdicts.filter { Self.result($0.outcome) == result }.count }

    /// 2 when an account is guessable, 1 when one could not be finished or read, else 0.
    public var exitStatus: Int32 {
        if self.count("guessable") > 0 { return AuditExitStatus.failures }
        if self.count("unfinished") + self.count("unreadable") + self.problems.count > 0 { return AuditExitStatus.warnings }
        return AuditExitStatus.pass
    }

    /// The verdict's name in the JSON and the counts.
    public static func result(_ outcome: AccountVerdict.Outcome) -> String {
        switch outcome {
        case .guessable: "guessable"
        case .notGuessed: "not_guessed"
        case .unfinished: "unfinished"
        case .skipped: "skipped"
        case .unreadable: "unreadable"
        }
    }

    func explanation(_ verdict: AccountVerdict) -> String {
        switch verdict.outcome {
        case .guessable(let rule, let password):
            let shown = self.showPasswords && !password.isEmpty ? " — password: \(password)" : ""
            return "guessable: \(rule.description)\(shown)"
        case .notGuessed: return "not guessed (\(verdict.tried) candidates, \(String(format: "%.1f", verdict.seconds)) s)"
        case .unfinished(let of): return "not finished in time: \(verdict.tried) of \(of) candidates tried"
        case .skipped(let why): return "skipped: \(why)"
        case .unreadable(let why): return "cannot check: \(why)"
        }
    }

    public func text() -> String {
        let mark = ["guessable": "FAIL", "not_guessed": "ok", "unfinished": "WARN", "skipped": "skip", "unreadable": "WARN"]
        var rows = self.verdicts.map { verdict in
            [mark[Self.result(verdict.outcome)]!, verdict.username, String(verdict.line), verdict.scheme ?? "-", self.explanation(verdict)]
        }
        rows += self.problems.map { ["WARN", "-", String($0.line), "-", $0.message] }
        var lines = [TextTable.render(["", "account", "line", "scheme", "result"], rows), ""]
        let rate = self.seconds > 0 ? Int(Double(self.checks) / self.seconds) : 0
        lines.append("\(self.verdicts.count) accounts: \(self.count("guessable")) guessable, \(self.count("not_guessed")) not guessed, "
            + "\(self.count("unfinished")) not finished, \(self.count("skipped")) skipped, \(self.count("unreadable") + self.problems.count) unreadable")
        lines.append("\(self.checks) candidate checks in \(String(format: "%.1f", self.seconds)) s (\(rate)/s, \(self.jobs) jobs); "
            + (self.wordlist.map { "wordlist \($0.path) (\($0.words.count) words)" } ?? "no wordlist"))
        return lines.joined(separator: "\n")
    }

    /// One JSON object, keys in a fixed order, seconds with three decimals.
    public func json() -> String {
        let accounts = self.verdicts.map { verdict -> String in
            var item = JSONObjectWriter()
            item.string("username", verdict.username)
            item.int("line", verdict.line)
            if let scheme = verdict.scheme { item.string("scheme", scheme) }
            item.string("result", Self.result(verdict.outcome))
            switch verdict.outcome {
            case .guessable(let rule, let password):
                item.string("rule", rule.code)
                item.string("reason", rule.description)
                if self.showPasswords { item.string("password", password) }
            case .unfinished(let of): item.int("candidates", of)
            case .skipped(let why), .unreadable(let why): item.string("reason", why)
            case .notGuessed: break
            }
            item.int("tried", verdict.tried)
            item.raw("seconds", String(format: "%.3f", verdict.seconds))
            return item.finish()
        }
        let problems = self.problems.map { problem -> String in
            var item = JSONObjectWriter()
            item.int("line", problem.line)
            item.string("message", problem.message)
            return item.finish()
        }
        var summary = JSONObjectWriter()
        summary.int("accounts", self.verdicts.count)
        for result in ["guessable", "not_guessed", "unfinished", "skipped", "unreadable"] { summary.int(result, self.count(result)) }
        summary.int("candidate_checks", self.checks)
        summary.raw("seconds", String(format: "%.3f", self.seconds))
        summary.int("checks_per_second", self.seconds > 0 ? Int(Double(self.checks) / self.seconds) : 0)
        summary.int("jobs", self.jobs)
        var out = JSONObjectWriter()
        out.string("file", self.file)
        if let wordlist { out.string("wordlist", wordlist.path); out.int("wordlist_words", wordlist.words.count) }
        out.raw("accounts", "[" + accounts.joined(separator: ",") + "]")
        out.raw("problems", "[" + problems.joined(separator: ",") + "]")
        out.raw("summary", summary.finish())
        out.int("exit_status", Int(self.exitStatus))
        return out.finish()
    }
}
