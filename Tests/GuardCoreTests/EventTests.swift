import Testing

@testable import GuardCore

@Suite("Events")
struct EventTests {
    @Test("an attempt event is one JSON line with the username escaped and no secret")
    func attemptLine() {
        let attempt = AuthAttempt(
            time: Timestamp(seconds: 1_767_225_600), client: IPAddress("2001:db8::7")!, clientPort: 4242,
            username: "evil\"\n{\"x\":1}\u{2028}", mechanism: .login, tls: false, outcome: .failure,
            credential: CredentialEvidence(passwordHash: 0xABC, isDefaultPassword: true))
        let decision = Decision(verdict: .refuse, delay: .milliseconds(1500), reasons: [.defaultCredential, .tarpit])
        let line = GuardEvent.attempt(AttemptRecord(attempt: attempt, session: "s1", replyCode: 535, decision: decision)).jsonLine
        #expect(!line.contains("\n"))
        #expect(line.contains(#""username":"evil\"\n{\"x\":1}\u2028""#))
        #expect(line.contains(#""time":"2026-01-01T00:00:00.000Z""#))
        #expect(line.contains(#""client_ip":"2001:db8::7","client_port":4242"#))
        #expect(line.contains(#""reasons":["default_credential","tarpit"]"#))
        #expect(line.contains(#""delay_ms":1500"#))
        #expect(line.contains(#""reply":535"#))
        #expect(!line.contains("abc") && !line.contains("2748"))  // the password hash is not published
    }

    @Test("ban and alert events")
    func banLine() {
        let ban = Ban(
            key: .prefix(IPNetwork("198.51.100.0/24")!), since: Timestamp(seconds: 0), until: Timestamp(seconds: 3600), reason: .prefixFailures,
            offense: 2)
        let line = GuardEvent.ban(ban).jsonLine
        #expect(line == #"{"time":"1970-01-01T00:00:00.000Z","event":"ban","scope":"prefix","key":"198.51.100.0/24","reason":"prefix_failures","since":"1970-01-01T00:00:00.000Z","until":"1970-01-01T01:00:00.000Z","duration_s":3600,"offense":2}"#)
        #expect(Timestamp(seconds: 951_782_400).iso8601 == "2000-02-29T00:00:00.000Z")
    }
}
