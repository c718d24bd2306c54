@testable import Audit
import GuardCore
import Testing

/// Hashes of "alice123" made by Dovecot's own `doveadm pw -s SCHEME -p alice123` (2.3.19), and
/// shadow-style crypt(3) strings made by libcrypt.
enum Fixtures {
    static let alice123: [String: String] = [
        "SHA512-CRYPT": "{SHA512-CRYPT}$6$z4sHkwqJqIyozGod$xpIbV6v4gpGaJuI/4/MsAHUWxkUBOte3eQWRLUA1g9GypgDeOF8fU.gQiThcr5i8JWaRvTC9w9XyAQwFHwbTY1",
        "SHA256-CRYPT": "{SHA256-CRYPT}$5$HaZCQtWdup0VM7OF$ryC4qbvsGnK16hbnkxWCWAys5nXJDzkTqu0S0ZbZ2mB",
        "BLF-CRYPT": "{BLF-CRYPT}$2y$05$iFFVDGd/TP5/8B3c/WCMkexcuL0Fmtoqj8FYGOlJs.KTh6PsDotoG",
        "MD5-CRYPT": "{MD5-CRYPT}$1$lPWYmKpF$p4a5Yc5qfycw.JWpRS0T5.",
        "SSHA256": "{SSHA256}gYN7OSr/iWRlUH4aEVK8OvmB40lwjO/tfIFDkEdCnEivqpfs",
        "SSHA512": "{SSHA512}lXFMyUKzGRApSU/y7c+OPK7W81g4V45+BtvT/r8rw4JHJO8YQ2ANFNgZV+qyvxKZwvGWOfqKxc6amUeTWks6xWJge8s=",
        "PLAIN": "{PLAIN}alice123",
        "SSHA256.HEX": "{SSHA256.HEX}7e82163626fcbc730628f0079b6bf86938a19817ce5879ccca4981560cc36384b06b1d52",
        "YESCRYPT": "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$CK2IUpKBHMhzwMM68Ljly9z95keQNYDOZoEe8BTBJkA",
    ]
}

@Suite struct StoredPasswordTests {
    @Test func everySchemeMatchesItsPasswordAndNoOther() throws {
        let crypt = CryptBuffer()
        for (scheme, field) in Fixtures.alice123 {
            let stored = try StoredPassword.parse(field)
            #expect(stored.matches("alice123", crypt: crypt), "\(scheme)")
            #expect(!stored.matches("alice124", crypt: crypt), "\(scheme)")
            #expect(!stored.matches("", crypt: crypt), "\(scheme)")
            #expect(stored.schemeName == (scheme == "SSHA256.HEX" ? "SSHA256" : scheme))
        }
    }

    @Test func withoutASchemeTheDefaultOneApplies() throws {
        let des = try StoredPassword.parse("ab6TRGT20sY26")  // crypt("root", "ab")
        #expect(des == .crypt("ab6TRGT20sY26") && des.schemeName == "DES-CRYPT")
        #expect(des.matches("root", crypt: CryptBuffer()))
        #expect(try StoredPassword.parse("secret", defaultScheme: "PLAIN") == .plain(Array("secret".utf8)))
    }

    @Test func unknownSchemesAndMalformedValuesAreNamed() {
        #expect(throws: StoredPassword.ParseError.unsupportedScheme("ARGON2ID")) { try StoredPassword.parse("{ARGON2ID}$argon2id$v=19$m=65536") }
        #expect(throws: StoredPassword.ParseError.malformed(scheme: "SSHA512", why: "not base64")) { try StoredPassword.parse("{SSHA512}***") }
        #expect(throws: StoredPassword.ParseError.malformed(scheme: "SHA256", why: "4 bytes, exactly 32 expected")) { try StoredPassword.parse("{SHA256}AAAAAA==") }
        #expect(throws: StoredPassword.ParseError.malformed(scheme: "SSHA256", why: "not hexadecimal")) { try StoredPassword.parse("{SSHA256.HEX}7e8") }
        #expect(throws: StoredPassword.ParseError.unsupportedScheme("PLAIN.ROT13")) { try StoredPassword.parse("{PLAIN.ROT13}nyvpr") }
    }

    @Test func aSettingLibcryptDoesNotKnowMatchesNothing() throws {
        let stored = try StoredPassword.parse("{CRYPT}$99$nonsense$")
        #expect(!stored.matches("alice123", crypt: CryptBuffer()))
    }
}

@Suite struct PasswordRulesTests {
    let rules = PasswordRules(wordlist: Wordlist(name: "test.lst", words: ["dragon", "letmein", "dragon"]))

    @Test func refusesWhatTheArticlesNameAndSaysWhy() {
        #expect(self.rules.refusal(of: "", username: "alice", administrator: false) == .blank)
        #expect(self.rules.refusal(of: "alice123", username: "alice@example.test", administrator: false) == .derivedFromUsername("${username}123"))
        #expect(self.rules.refusal(of: "ALICE12", username: "alice", administrator: false) == .derivedFromUsername("${username}12"))
        #expect(self.rules.refusal(of: "aLiCe", username: "alice", administrator: false) == .derivedFromUsername("${username}"))
        #expect(self.rules.refusal(of: "ecila", username: "alice", administrator: false) == .derivedFromUsername("the username reversed"))
        #expect(self.rules.refusal(of: "Alice@Example.test123", username: "alice@example.test", administrator: false) == .derivedFromUsername("${user@domain}123"))
        #expect(self.rules.refusal(of: "Password", username: "alice", administrator: false) == .defaultList)
        #expect(self.rules.refusal(of: "!@#$%^&*", username: nil, administrator: false) == .defaultList)
        #expect(self.rules.refusal(of: "Dragon", username: "alice", administrator: false) == .wordlist("test.lst"))
        #expect(self.rules.refusal(of: "Tr0ub4dor", username: "alice", administrator: false) == .tooShort(minimum: 10))
        #expect(self.rules.refusal(of: "Correct-Horse-9-Battery", username: "alice", administrator: false) == nil)
    }

    @Test func administratorsNeedFifteenCharacters() {
        let fourteen = "Correct-Horse9", fifteen = "Correct-Horse-9"
        #expect(self.rules.refusal(of: fourteen, username: "alice", administrator: false) == nil)
        #expect(self.rules.refusal(of: fourteen, username: "alice", administrator: true) == .tooShort(minimum: 15))
        #expect(self.rules.refusal(of: fourteen, username: "postmaster@example.test", administrator: false) == .tooShort(minimum: 15))
        #expect(self.rules.refusal(of: fifteen, username: "admin", administrator: false) == nil)
    }

    @Test func candidatesComeMostLikelyFirstEachOnceWithTheirRule() {
        let candidates = self.rules.candidates(for: "alice")
        let passwords = candidates.map(\.password)
        #expect(candidates.first == PasswordCandidate(password: "", rule: .blank))
        #expect(Set(passwords).count == passwords.count)
        for expected in ["alice", "alice12", "alice123", "Alice123", "ALICE123", "ecila", "123456", "password", "!@#$%^&*", "dragon", "letmein"] {
            #expect(passwords.contains(expected), "\(expected)")
        }
        #expect(candidates.first { $0.password == "Alice123" }?.rule == .derivedFromUsername("${username}123, capitalised"))
        // The username's own forms before the default list, the list before the wordlist.
        #expect(passwords.firstIndex(of: "alice123")! < passwords.firstIndex(of: "123456")!)
        #expect(passwords.firstIndex(of: "123456")! < passwords.firstIndex(of: "dragon")!)
        #expect(candidates.last == PasswordCandidate(password: "letmein", rule: .wordlist("test.lst")))
    }
}

@Suite struct AccountFileTests {
    @Test func readsPasswdFilesAndShadowFilesAndNamesTheLinesItCannot() {
        let text = """
            # Dovecot passwd-file
            alice:{SHA512-CRYPT}$6$z4sHkwqJqIyozGod$xpIbV6v4gpGaJuI/4/MsAHUWxkUBOte3eQWRLUA1g9GypgDeOF8fU.gQiThcr5i8JWaRvTC9w9XyAQwFHwbTY1::::::
            guest:::::::nopassword=y
            nobody:::::::
            broken line without a colon
            carol:{ARGON2ID}$argon2id$v=19$m=65536::::::

            root:!:19000:0:99999:7:::
            daemon:*:19000:0:99999:7:::
            toor::19000:0:99999:7:::
            dave:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$CK2IUpKBHMhzwMM68Ljly9z95keQNYDOZoEe8BTBJkA:19000:0:99999:7:::
            erin:x:1000:1000::/home/erin:/bin/sh\r
            """
        let file = AccountFile(text: text)
        #expect(file.problems == [AccountFile.Problem(line: 5, message: "not an account line (expected user:password:…)")])
        let byName = Dictionary(uniqueKeysWithValues: file.entries.map { ($0.username, $0) })
        #expect(file.entries.map(\.username) == ["alice", "guest", "nobody", "carol", "root", "daemon", "toor", "dave", "erin"])
        guard case .stored(let stored) = byName["alice"]?.password else { Issue.record("alice"); return }
        #expect(stored.schemeName == "SHA512-CRYPT" && byName["alice"]?.line == 2)
        #expect(byName["guest"]?.password == .open(.noPasswordNeeded))
        #expect(byName["nobody"]?.password == .skipped("no password set"))
        #expect(byName["carol"]?.password == .unreadable("the scheme {ARGON2ID} is not one the audit can check"))
        #expect(byName["root"]?.password == .skipped("locked (!)"))
        #expect(byName["daemon"]?.password == .skipped("locked (*)"))
        #expect(byName["toor"]?.password == .open(.blank))
        #expect(byName["erin"]?.password == .skipped("the password is in the shadow file (x)"))
        guard case .stored(let yescrypt) = byName["dave"]?.password else { Issue.record("dave"); return }
        #expect(yescrypt.schemeName == "YESCRYPT")
    }
}

@Suite struct PasswordAuditTests {
    /// Chunks of one candidate each spread every account over both workers: same verdicts.
    @Test(arguments: [1, 64]) func findsTheWeakAccountsInParallelAndNamesTheRule(chunkSize: Int) throws {
        let lines = [
            "alice:" + Fixtures.alice123["SHA512-CRYPT"]!,  // alice123: ${username}123
            "bob:" + Fixtures.alice123["BLF-CRYPT"]!,       // alice123 is nothing bob's name makes: not guessed
            "admin:{PLAIN}admin",
            "test:{SSHA256}" + "gYN7OSr/iWRlUH4aEVK8OvmB40lwjO/tfIFDkEdCnEivqpfs",
            "guest:::::::nopassword",
            "root:!",
        ]
        let file = AccountFile(text: lines.joined(separator: "\n"))
        let audit = PasswordAudit(rules: PasswordRules(wordlist: Wordlist(name: "w.lst", words: ["dragon", "alice123x"])), jobs: 2, timePerAccount: .seconds(60), chunkSize: chunkSize)
        let progress = Mutex(0)
        let verdicts = audit.run(file.entries) { done, _ in progress.withLock { $0 = max($0, done) } }
        #expect(progress.withLock { $0 } == 6)
        #expect(verdicts.map(\.username) == ["alice", "bob", "admin", "test", "guest", "root"])
        guard case .guessable(let rule, let password) = verdicts[0].outcome else { Issue.record("alice: \(verdicts[0].outcome)"); return }
        #expect(rule == .derivedFromUsername("${username}123") && password == "alice123" && verdicts[0].scheme == "SHA512-CRYPT")
        guard case .notGuessed = verdicts[1].outcome else { Issue.record("bob: \(verdicts[1].outcome)"); return }
        #expect(verdicts[1].tried == PasswordRules(wordlist: Wordlist(name: "w.lst", words: ["dragon", "alice123x"])).candidates(for: "bob").count)
        guard case .guessable(.derivedFromUsername("${username}"), _) = verdicts[2].outcome else { Issue.record("admin: \(verdicts[2].outcome)"); return }
        guard case .notGuessed = verdicts[3].outcome else { Issue.record("test: \(verdicts[3].outcome)"); return }
        guard case .guessable(.noPasswordNeeded, _) = verdicts[4].outcome else { Issue.record("guest"); return }
        guard case .skipped("locked (!)") = verdicts[5].outcome else { Issue.record("root"); return }
    }

    @Test func anAccountStopsWhenItsTimeIsUp() {
        let file = AccountFile(text: "bob:" + Fixtures.alice123["BLF-CRYPT"]!)
        let audit = PasswordAudit(rules: PasswordRules(), jobs: 1, timePerAccount: .nanoseconds(1))
        let verdict = audit.run(file.entries)[0]
        guard case .unfinished(let of) = verdict.outcome else { Issue.record("\(verdict.outcome)"); return }
        #expect(verdict.tried == 1 && of == PasswordRules().candidates(for: "bob").count)
    }
}

import Synchronization
