// The audit commands' reports, without the command line: classification, exit status, the
// table and the JSON of `audit-passwords`, `check-password`, `audit` and `dnsbl`.

@testable import Audit
import Foundation
import GuardCore
import Testing

@Suite struct ReportTests {
    static func verdict(_ username: String, line: Int, _ outcome: AccountVerdict.Outcome, tried: Int = 10) -> AccountVerdict {
        AccountVerdict(username: username, line: line, scheme: "SHA512-CRYPT", outcome: outcome, tried: tried, seconds: 0.25)
    }

    static func report(_ verdicts: [AccountVerdict], problems: [AccountFile.Problem] = [], showPasswords: Bool = false) -> PasswordAuditReport {
        PasswordAuditReport(
            file: "/etc/dovecot/users", wordlist: Wordlist(name: "password.lst", words: ["letmein"]), verdicts: verdicts, problems: problems,
            seconds: 2, jobs: 2, showPasswords: showPasswords)
    }

    @Test("a guessable account fails the audit, one unfinished or unreadable warns, the rest pass")
    func passwordAuditExitStatus() {
        let ok = Self.verdict("carol", line: 3, .notGuessed)
        #expect(Self.report([ok]).exitStatus == 0)
        #expect(Self.report([ok, Self.verdict("dave", line: 4, .unfinished(of: 900))]).exitStatus == 1)
        #expect(Self.report([ok], problems: [AccountFile.Problem(line: 9, message: "no password field")]).exitStatus == 1)
        #expect(Self.report([ok, Self.verdict("erin", line: 5, .skipped("locked"))]).exitStatus == 0)
        let guessed = Self.verdict("alice", line: 2, .guessable(.derivedFromUsername("${username}123"), password: "alice123"))
        #expect(Self.report([ok, guessed, Self.verdict("dave", line: 4, .unreadable("bad hash"))]).exitStatus == 2)
    }

    @Test("the report names the rule, never the password unless asked; its JSON counts each result")
    func passwordAuditTextAndJSON() throws {
        let guessed = Self.verdict("alice", line: 2, .guessable(.derivedFromUsername("${username}123"), password: "alice123"))
        let report = Self.report([guessed, Self.verdict("carol", line: 3, .notGuessed)])
        let text = report.text()
        #expect(text.contains("FAIL  alice    2     SHA512-CRYPT  guessable: made from the username (${username}123)"), "\(text)")
        #expect(text.contains("2 accounts: 1 guessable, 1 not guessed, 0 not finished, 0 skipped, 0 unreadable"))
        #expect(text.contains("20 candidate checks in 2.0 s (10/s, 2 jobs); wordlist password.lst (1 words)"))
        #expect(!text.contains("alice123") && !report.json().contains("alice123"))
        #expect(Self.report([guessed], showPasswords: true).text().contains("— password: alice123"))
        let json = try #require(JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        let summary = try #require(json["summary"] as? [String: Any])
        #expect(summary["guessable"] as? Int == 1 && summary["not_guessed"] as? Int == 1 && summary["candidate_checks"] as? Int == 20)
        #expect(json["exit_status"] as? Int == 2)
        #expect(report.json().hasPrefix(#"{"file":"/etc/dovecot/users","wordlist":"password.lst","wordlist_words":1,"accounts":[{"username":"alice","line":2,"#))
        #expect(report.json().contains(#""tried":10,"seconds":0.250}"#))
    }

    @Test("check-password: accepted lists what was checked, refused names the rule; exit 0 or 2")
    func passwordCheck() {
        let accepted = PasswordCheckReport(refusal: nil, username: "alice", administrator: false, minimumLength: 10, wordlist: nil)
        #expect(accepted.text() == "accepted: not blank, not a bots' default, not made from the username, at least 10 characters")
        #expect(accepted.exitStatus == 0)
        #expect(accepted.json() == #"{"accepted":true,"username":"alice","administrator":false,"minimum_length":10}"#)
        let refused = PasswordCheckReport(refusal: .tooShort(minimum: 15), username: nil, administrator: true, minimumLength: 15, wordlist: nil)
        #expect(refused.text() == "refused: shorter than 15 characters")
        #expect(refused.exitStatus == 2)
        #expect(refused.json() == #"{"accepted":false,"rule":"too_short","reason":"shorter than 15 characters","administrator":true,"minimum_length":15}"#)
    }

    @Test("the server audit's report: findings, the fixes, the worst status as exit status")
    func serverAudit() {
        let report = ServerAuditReport(
            target: "mx.example.com:25", greeting: "220 mx.example.com ESMTP", tls: nil,
            findings: [AuditFinding("banner", .pass, "no product named"), AuditFinding("open-relay", .fail, "relays", fix: "restrict relaying")])
        #expect(report.exitStatus == 2)
        let text = report.text()
        #expect(text.hasPrefix("smtpguard audit mx.example.com:25\ngreeting: 220 mx.example.com ESMTP\n"))
        #expect(text.contains("To fix:\n  open-relay: restrict relaying") && text.hasSuffix("1 passed, 0 warnings, 1 failed"))
        #expect(report.json().hasSuffix(#""fix":"restrict relaying"}],"result":"fail"}"#))
    }

    @Test("a blocklist listing fails, a lookup error only warns")
    func blocklist() {
        let resolver = DNSResolver(host: "127.0.0.1", port: 5353)
        let address = IPAddress("192.0.2.7")!
        let clean = BlocklistReport(answers: [BlocklistAnswer(address: address, zone: "zen.example", result: .notListed)], resolver: resolver)
        #expect(clean.exitStatus == 0)
        #expect(clean.json() == #"{"resolver":"127.0.0.1:5353","results":[{"address":"192.0.2.7","zone":"zen.example","result":"not_listed"}]}"#)
        let failed = BlocklistReport(answers: clean.answers + [BlocklistAnswer(address: address, zone: "b.example", result: .error("timeout"))], resolver: resolver)
        #expect(failed.exitStatus == 1)
        #expect(failed.text().hasSuffix("2 lookups through 127.0.0.1:5353: 0 listed, 1 not listed, 1 errors"))
        let listed = BlocklistReport(answers: [BlocklistAnswer(address: address, zone: "zen.example", result: .listed(codes: ["127.0.0.2"], meanings: ["spam source"], reason: nil))], resolver: resolver)
        #expect(listed.exitStatus == 2)
        #expect(listed.text().contains("192.0.2.7  zen.example  LISTED  127.0.0.2 — spam source"))
    }
}
