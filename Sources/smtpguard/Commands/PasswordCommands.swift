// `smtpguard check-password` and `smtpguard audit-passwords`: the password hygiene the seed
// articles ask for. Neither ever prints a password unless asked to (`--show-passwords`).
//
// Exit status, as for every audit command: 0 pass, 1 warnings, 2 failures (a password refused,
// an account guessable), 3 the check could not run (an unreadable file, no password given).

import ArgumentParser
import Audit
import Foundation
import GuardCore

/// The wordlist options both commands share.
struct WordlistOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("A list of common passwords, one per line (default: John the Ripper's \(Wordlist.johnDefaultPath) when installed, from Debian's john-data).", valueName: "file"))
    var wordlist: String?

    @Flag(name: .long, help: "Use no wordlist: only the default list and the username rules (and, for check-password, the length).")
    var noWordlist = false

    /// The wordlist asked for; nil when none is asked for or the default one is not installed.
    func load() throws -> Wordlist? {
        if self.noWordlist { return nil }
        if let path = self.wordlist { return try Self.read(path) }
        guard FileManager.default.isReadableFile(atPath: Wordlist.johnDefaultPath) else { return nil }
        return try Self.read(Wordlist.johnDefaultPath)
    }

    private static func read(_ path: String) throws -> Wordlist {
        do { return try Wordlist.load(path) } catch { throw AuditFailure(error.description) }
    }
}

/// An audit that could not run: printed, exit status 3.
struct AuditFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum AuditExit {
    static let pass: Int32 = 0, warnings: Int32 = 1, failures: Int32 = 2, error: Int32 = 3

    /// Runs `body`; an AuditFailure (or the probe's ProbeError) is printed and becomes exit
    /// status 3.
    static func run(_ body: () throws -> Int32) throws {
        try self.exit(with: Result { try body() })
    }

    static func run(_ body: () async throws -> Int32) async throws {
        let result: Result<Int32, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        try self.exit(with: result)
    }

    private static func exit(with result: Result<Int32, any Error>) throws {
        let status: Int32
        switch result {
        case .success(let value):
            status = value
        case .failure(let failure as AuditFailure):
            FileHandle.standardError.write(Data("Error: \(failure.description)\n".utf8))
            status = Self.error
        case .failure(let failure as ProbeError):
            FileHandle.standardError.write(Data("Error: \(failure.description)\n".utf8))
            status = Self.error
        case .failure(let other):
            throw other
        }
        if status != 0 { throw ExitCode(status) }
    }
}

struct CheckPasswordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-password",
        abstract: "Refuse a weak password: blank, a bot's default, made from the username, common, or short.",
        discussion: """
            The password is read from standard input (up to the first newline or NUL: what \
            pam_exec's expose_authtok writes) or, on a terminal, asked for without echo. It is never \
            an argument, never printed and never stored.

            Refused: a blank password; one on the list spam bots try (123456, password, admin …); one \
            made from the username (${username}, ${username}12, ${username}123, reversed, in any case); \
            one in the wordlist; one shorter than --min-length (--admin-min-length for administrators: \
            --admin, or a username such as admin, administrator, root or postmaster).

            As a password-change hook: `echo "$NEW" | smtpguard check-password --user "$USER"`; with \
            pam_exec, `password requisite pam_exec.so expose_authtok quiet /usr/local/bin/smtpguard \
            check-password` (the username comes from PAM_USER).

            Exit status: 0 accepted, 2 refused, 3 could not check.
            """
    )

    @Option(name: .long, help: ArgumentHelp("The account's username (default: $PAM_USER).", valueName: "name"))
    var user: String?

    @Flag(name: .long, help: "The account is an administrator's: hold it to --admin-min-length.")
    var admin = false

    @Option(name: .long, help: ArgumentHelp("Shortest password accepted.", valueName: "n"))
    var minLength = 10

    @Option(name: .long, help: ArgumentHelp("Shortest password accepted for an administrator.", valueName: "n"))
    var adminMinLength = 15

    @OptionGroup var wordlistOptions: WordlistOptions

    @Flag(name: .long, help: "Print the verdict as JSON.")
    var json = false

    func validate() throws {
        guard self.minLength >= 0, self.adminMinLength >= 0 else { throw ValidationError("--min-length and --admin-min-length: expected 0 or more") }
    }

    func run() throws {
        try AuditExit.run {
            let wordlist = try self.wordlistOptions.load()
            let password = try PasswordInput.read()
            let username = self.user ?? ProcessInfo.processInfo.environment["PAM_USER"].flatMap { $0.isEmpty ? nil : $0 }
            let rules = PasswordRules(wordlist: wordlist, minimumLength: self.minLength, administratorMinimumLength: self.adminMinLength)
            let administrator = self.admin || username.map(PasswordRules.isAdministrator) == true
            let refusal = rules.refusal(of: password, username: username, administrator: administrator)
            let minimum = administrator ? self.adminMinLength : self.minLength
            if self.json {
                var out = JSONObjectWriter()
                out.bool("accepted", refusal == nil)
                if let refusal {
                    out.string("rule", refusal.code)
                    out.string("reason", refusal.description)
                }
                if let username { out.string("username", username) }
                out.bool("administrator", administrator)
                out.int("minimum_length", minimum)
                if let wordlist {
                    out.string("wordlist", wordlist.path)
                    out.int("wordlist_words", wordlist.words.count)
                }
                print(out.finish())
            } else if let refusal {
                print("refused: \(refusal.description)")
            } else {
                var checked = ["not blank", "not a bots' default"]
                if username != nil { checked.append("not made from the username") }
                if let wordlist { checked.append("not in \(wordlist.name) (\(wordlist.words.count) words)") }
                checked.append("at least \(minimum) characters")
                print("accepted: " + checked.joined(separator: ", "))
            }
            return refusal == nil ? AuditExit.pass : AuditExit.failures
        }
    }
}

/// The password to check, from standard input or a prompt without echo.
enum PasswordInput {
    static func read() throws -> String {
        if isatty(STDIN_FILENO) == 1 { return try self.prompt() }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= 4096 {
            let count = Foundation.read(STDIN_FILENO, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
            if bytes.contains(0) || bytes.contains(UInt8(ascii: "\n")) { break }
        }
        guard !bytes.isEmpty else { throw AuditFailure("no password on standard input") }
        let end = bytes.firstIndex { $0 == 0 || $0 == UInt8(ascii: "\n") } ?? bytes.endIndex
        guard end <= 4096 else { throw AuditFailure("the password on standard input is longer than 4096 bytes") }
        var line = bytes[..<end]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        guard let password = String(validating: line, as: UTF8.self) else { throw AuditFailure("the password on standard input is not UTF-8") }
        return password
    }

    private static func prompt() throws -> String {
        var saved = termios()
        guard tcgetattr(STDIN_FILENO, &saved) == 0 else { throw AuditFailure("cannot read the terminal's settings: \(String(cString: strerror(errno)))") }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        FileHandle.standardError.write(Data("Password: ".utf8))
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        guard let line = Swift.readLine(strippingNewline: true) else { throw AuditFailure("no password typed") }
        return line
    }
}

struct AuditPasswordsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit-passwords",
        abstract: "Find the accounts whose password a bot would guess, in a Dovecot passwd-file or a shadow file.",
        discussion: """
            For each account, tries what a bot tries, most likely first, against the stored hash: \
            blank, made from the username (${username}, ${username}12, ${username}123, reversed, \
            capitalised, in capitals), the default list, then the wordlist. It stops at the first \
            match and names the rule that found it, not the password (unless --show-passwords).

            Schemes: {SHA512-CRYPT} {SHA256-CRYPT} {BLF-CRYPT} {MD5-CRYPT} {DES-CRYPT} {CRYPT} and the shadow \
            file's crypt(3) strings (yescrypt included) through the system's libcrypt; {SSHA256} \
            {SSHA512} {SHA256} {SHA512} (base64, or .HEX); {PLAIN} {CLEAR}. A blank shadow password \
            and Dovecot's nopassword count as guessable; locked accounts (! or *) are skipped.

            The work is shared out on every core (--jobs), an account's candidates in chunks, each \
            account for at most \
            --time-per-account. Progress goes to standard error on a terminal.

            Exit status: 0 nothing guessable, 1 warnings (an account not finished in time, a hash \
            or line that cannot be read), 2 guessable accounts, 3 the file cannot be read.
            """
    )

    @Argument(help: ArgumentHelp("A Dovecot passwd-file or a shadow file.", valueName: "file"))
    var file: String

    @OptionGroup var wordlistOptions: WordlistOptions

    @Option(name: .long, help: ArgumentHelp("The scheme of a password without {SCHEME} (Dovecot's passwd-file default).", valueName: "scheme"))
    var defaultScheme = "CRYPT"

    @Option(name: .long, help: ArgumentHelp("Accounts checked at once (default: one per core).", valueName: "n"))
    var jobs: Int?

    /// --jobs, or one per core.
    var jobCount: Int { self.jobs ?? ProcessInfo.processInfo.activeProcessorCount }

    @Option(name: .long, help: ArgumentHelp("The most time spent on one account.", valueName: "duration"))
    var timePerAccount = "60s"

    @Flag(name: .long, help: "Print the guessed passwords too (they are secrets: mind where the output goes).")
    var showPasswords = false

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        guard self.jobCount >= 1 else { throw ValidationError("--jobs: expected 1 or more") }
        guard let limit = parseDuration(self.timePerAccount), limit > .zero else {
            throw ValidationError("--time-per-account: expected a duration such as 30s or 5m")
        }
    }

    func run() throws {
        try AuditExit.run {
            let text: String
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: self.file))
                text = String(decoding: data, as: UTF8.self)
            } catch {
                throw AuditFailure("cannot read \(self.file): \((error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription)")
            }
            let wordlist = try self.wordlistOptions.load()
            let accounts = AccountFile(text: text, defaultScheme: self.defaultScheme)
            let audit = PasswordAudit(rules: PasswordRules(wordlist: wordlist), jobs: self.jobCount, timePerAccount: parseDuration(self.timePerAccount)!)
            let progress = ProgressLine(total: accounts.entries.count)
            let start = ContinuousClock.now
            let verdicts = audit.run(accounts.entries) { done, guessable in progress.update(done: done, guessable: guessable) }
            progress.finish()
            let report = PasswordAuditReport(file: self.file, wordlist: wordlist, verdicts: verdicts, problems: accounts.problems,
                                             seconds: PasswordAudit.seconds(ContinuousClock.now - start), jobs: audit.jobs,
                                             showPasswords: self.showPasswords)
            print(self.json ? report.json() : report.text())
            return report.exitStatus
        }
    }
}

/// "12/40 accounts, 3 guessable" on standard error, rewritten in place, only on a terminal.
final class ProgressLine: Sendable {
    let total: Int
    let enabled = isatty(STDERR_FILENO) == 1

    init(total: Int) { self.total = total }

    func update(done: Int, guessable: Int) {
        guard self.enabled else { return }
        FileHandle.standardError.write(Data("\r\(done)/\(self.total) accounts checked, \(guessable) guessable ".utf8))
    }

    func finish() {
        guard self.enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

/// The audit's report: a table for people, JSON for programs, and the exit status.
struct PasswordAuditReport {
    let file: String
    let wordlist: Wordlist?
    let verdicts: [AccountVerdict]
    let problems: [AccountFile.Problem]
    let seconds: Double
    let jobs: Int
    let showPasswords: Bool

    var checks: Int { self.verdicts.reduce(0) { $0 + $1.tried } }

    func count(_ result: String) -> Int { self.verdicts.filter { Self.result($0.outcome) == result }.count }

    var exitStatus: Int32 {
        if self.count("guessable") > 0 { return AuditExit.failures }
        if self.count("unfinished") + self.count("unreadable") + self.problems.count > 0 { return AuditExit.warnings }
        return AuditExit.pass
    }

    static func result(_ outcome: AccountVerdict.Outcome) -> String {
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

    func text() -> String {
        let mark = ["guessable": "FAIL", "not_guessed": "ok", "unfinished": "WARN", "skipped": "skip", "unreadable": "WARN"]
        var rows = self.verdicts.map { verdict in
            [mark[Self.result(verdict.outcome)]!, verdict.username, String(verdict.line), verdict.scheme ?? "-", self.explanation(verdict)]
        }
        rows += self.problems.map { ["WARN", "-", String($0.line), "-", $0.message] }
        var lines = [Table.render(["", "account", "line", "scheme", "result"], rows), ""]
        let rate = self.seconds > 0 ? Int(Double(self.checks) / self.seconds) : 0
        lines.append("\(self.verdicts.count) accounts: \(self.count("guessable")) guessable, \(self.count("not_guessed")) not guessed, "
            + "\(self.count("unfinished")) not finished, \(self.count("skipped")) skipped, \(self.count("unreadable") + self.problems.count) unreadable")
        lines.append("\(self.checks) candidate checks in \(String(format: "%.1f", self.seconds)) s (\(rate)/s, \(self.jobs) jobs); "
            + (self.wordlist.map { "wordlist \($0.path) (\($0.words.count) words)" } ?? "no wordlist"))
        return lines.joined(separator: "\n")
    }

    func json() -> String {
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
