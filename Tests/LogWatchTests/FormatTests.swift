// Every format's annotated sample lines, with the expected extraction.

import GuardCore
import Testing

@testable import LogWatch

@Suite("Log formats")
struct FormatTests {
    static func match(_ line: String) -> LogMatch? {
        var formats: [any LogFormat] = [PostfixFormat(), DovecotFormat()]
        let bytes = Array(line.utf8)
        guard let parsed = SyslogLine(bytes[...]) else { return nil }
        for index in formats.indices {
            if let found = formats[index].match(line: bytes[...], message: parsed.message, program: parsed.program) { return found }
        }
        return nil
    }

    static func failure(_ rule: String, _ client: String, _ user: String, count: Int = 1) -> LogMatch {
        .attempt(rule: rule, client: IPAddress(client)!, username: user, outcome: .failure, count: count)
    }

    @Test("Postfix 3.7 lines, as the lab's Postfix wrote them")
    func postfix() {
        #expect(
            Self.match("Nov 23 00:45:38 smtpguard postfix/smtpd[16461]: warning: unknown[127.0.0.1]: SASL PLAIN authentication failed: (reason unavailable), sasl_username=alice")
                == Self.failure("sasl_failed", "127.0.0.1", "alice"))
        #expect(
            Self.match("2026-11-23T00:45:38.123456+00:00 mx postfix/submission/smtpd[77]: warning: host.example.net[2001:db8::5]: SASL LOGIN authentication failed: UGFzc3dvcmQ6")
                == Self.failure("sasl_failed", "2001:db8::5", ""))
        #expect(
            Self.match("Nov 23 00:45:38 mx postfix/smtpd[1]: 4XyZ: client=unknown[192.0.2.7], sasl_method=PLAIN, sasl_username=bob")
                == .attempt(rule: "sasl_success", client: IPAddress("192.0.2.7")!, username: "bob", outcome: .success, count: 1))
        #expect(
            Self.match("Nov 23 00:45:38 mx postfix/smtpd[1]: lost connection after AUTH from unknown[198.51.100.4]")
                == .attempt(rule: "dropped_after_auth", client: IPAddress("198.51.100.4")!, username: "", outcome: .abandoned, count: 1))
        #expect(
            Self.match("Nov 23 00:45:38 mx postfix/submission/smtpd[1]: too many errors after AUTH from unknown[2001:db8::9]")
                == .attempt(rule: "dropped_after_auth", client: IPAddress("2001:db8::9")!, username: "", outcome: .abandoned, count: 1))
        // Not smtpd: never matched, whatever it says.
        #expect(Self.match("Nov 23 00:45:38 mx postfix/cleanup[1]: warning: unknown[192.0.2.1]: SASL PLAIN authentication failed: x") == nil)
        #expect(Self.match("Nov 23 00:45:38 mx postfix/smtpd[1]: disconnect from unknown[127.0.0.1] ehlo=1 auth=0/1 quit=1 commands=2/3") == nil)
        #expect(Self.match("Nov 23 00:45:38 mx postfix/smtpd[1]: connect from unknown[127.0.0.1]") == nil)
    }

    @Test("a username crafted to look like an address never moves the blame")
    func injection() {
        #expect(
            Self.match("Nov 23 00:45:38 mx postfix/smtpd[1]: warning: unknown[203.0.113.9]: SASL PLAIN authentication failed: x, sasl_username=x from unknown[192.0.2.1]: SASL PLAIN authentication failed")
                == Self.failure("sasl_failed", "203.0.113.9", "x from unknown[192.0.2.1]: SASL PLAIN authentication failed"))
        #expect(
            Self.match("Nov 23 00:45:38 mx dovecot: auth: Info: passwd-file(x,192.0.2.1,203.0.113.9): Password mismatch")
                == Self.failure("password_mismatch", "203.0.113.9", "x,192.0.2.1"))
        #expect(
            Self.match("Nov 23 00:45:38 mx dovecot: auth: Info: passwd-file(evil) (192.0.2.1,203.0.113.9): unknown user")
                == Self.failure("unknown_user", "203.0.113.9", "evil) (192.0.2.1"))
    }

    @Test("Dovecot 2.3 lines, through syslog and from its own log file")
    func dovecot() {
        #expect(Self.match("Nov 23 00:45:38 mx dovecot: auth: Info: passwd-file(alice,127.0.0.1): Password mismatch") == Self.failure("password_mismatch", "127.0.0.1", "alice"))
        #expect(Self.match("Nov 23 00:45:38 auth: Info: passwd-file(nosuchuser,127.0.0.1): unknown user") == Self.failure("unknown_user", "127.0.0.1", "nosuchuser"))
        #expect(
            Self.match("Nov 23 00:45:38 mx dovecot: auth-worker(4242): Info: pam(carol@example.org,2001:db8::7,<Bx2k1>): Password mismatch")
                == Self.failure("password_mismatch", "2001:db8::7", "carol@example.org"))
        #expect(
            Self.match("Nov 23 00:45:38 mx dovecot: imap-login: Info: Disconnected: Connection closed (auth failed, 3 attempts in 6 secs): user=<alice>, method=PLAIN, rip=192.0.2.44, lip=192.0.2.1, TLS, session=<x>")
                == Self.failure("auth_failed_attempts", "192.0.2.44", "alice", count: 3))
    }

    @Test("Dovecot 2.4 lines: auth-worker connections, session ids, pam, login aborted")
    func dovecot24() {
        #expect(
            Self.match("Nov 23 00:45:38 mx dovecot: auth-worker(77): Info: conn unix:auth-worker (pid=70,uid=97): auth-worker<1>: sql(bob,192.0.2.8,<kZ1x>): Password mismatch")
                == Self.failure("password_mismatch", "192.0.2.8", "bob"))
        #expect(
            Self.match("Nov 23 00:45:38 mx dovecot: auth: Info: pam(carol,198.51.100.3,<Gh7>): pam_authenticate() failed: Authentication failure (password mismatch?)")
                == Self.failure("pam_failed", "198.51.100.3", "carol"))
        #expect(
            Self.match("Nov 23 00:45:38 mx dovecot: submission-login: Info: Login aborted: Logged out (auth failed, 2 attempts in 4 secs) (auth_failed): user=<dave>, method=PLAIN, rip=203.0.113.77, lip=10.0.0.1, session=<y>")
                == Self.failure("auth_failed_attempts", "203.0.113.77", "dave", count: 2))
        // auth_verbose_passwords adds the password: still matched, and the password is not the username.
        #expect(
            Self.match("Nov 23 00:45:38 mx dovecot: auth: Info: passwd-file(erin,192.0.2.9): Password mismatch (given password: hunter2)")
                == Self.failure("password_mismatch", "192.0.2.9", "erin"))
        // Another program's line is never Dovecot's.
        #expect(Self.match("Nov 23 00:45:38 mx sshd[9]: passwd-file(x,192.0.2.1): Password mismatch") == nil)
    }

    @Test("a line about a failed authentication that no rule knows is a suspect, not silence")
    func suspects() {
        #expect(Self.match("Nov 23 00:45:38 mx postfix/smtpd[1]: warning: SASL authentication failure: cannot connect to Dovecot") == .suspect)
        #expect(Self.match("Nov 23 00:45:38 mx dovecot: auth: Info: passwd-file(alice): Password mismatch") == .suspect)
        #expect(Self.match("Nov 23 00:45:38 mx dovecot: auth: Info: new log format: authentication FAILED for alice from 192.0.2.1") == .suspect)
    }
}

@Suite("Exim format")
struct EximFormatTests {
    static func match(_ line: String) -> LogMatch? {
        let bytes = Array(line.utf8)
        return EximFormat().match(line: bytes[...], message: [][...], program: [][...])
    }

    @Test("Exim 4 main log lines, old and new host forms")
    func exim() {
        #expect(
            Self.match("2026-11-23 02:03:14 login authenticator failed for (kali) [192.0.2.1]:56789: 535 Incorrect authentication data (set_id=admin)")
                == FormatTests.failure("authenticator_failed", "192.0.2.1", "admin"))
        #expect(
            Self.match("2026-11-23 02:03:14 [1234] dovecot_plain authenticator failed for H=mail.example (kali) [2001:db8::1]:40000 I=[10.0.0.1]:587: 535 Incorrect authentication data (set_id=bob)")
                == FormatTests.failure("authenticator_failed", "2001:db8::1", "bob"))
        #expect(Self.match("2026-11-23 02:03:14 H=(kali) [192.0.2.1]:1 rejected AUTH: authentication failed") == .suspect)
        #expect(Self.match("2026-11-23 02:03:14 Completed") == nil)
    }

    @Test("a HELO name with brackets cannot move the blame")
    func heloInjection() {
        #expect(
            Self.match("2026-11-23 02:03:14 login authenticator failed for (x) [192.0.2.1]:1 (y) [203.0.113.9]:5555: 535 Incorrect authentication data (set_id=a)")
                == FormatTests.failure("authenticator_failed", "203.0.113.9", "a"))
    }
}
