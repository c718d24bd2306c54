// `smtpguard check-password` and `smtpguard audit-passwords`: the password hygiene the seed
// articles ask for. Neither ever prints a password unless asked to (`--show-passwords`).
//
// Exit status, as for every audit command: 0 pass, 1 warnings, 2 failures (a password refused,
// an account guessable), 3 the check could not run (an unreadable file, no password given).
// The reports themselves (PasswordCheckReport, PasswordAuditReport) are Audit's.

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
            let report = PasswordCheckReport(refusal: refusal, username: username, administrator: administrator, minimumLength: minimum, wordlist: wordlist)
            print(self.json ? report.json() : report.text())
            return report.exitStatus
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
