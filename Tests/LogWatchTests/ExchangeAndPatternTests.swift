// Exchange's CSV protocol log and user-defined patterns.

import GuardCore
import Testing

@testable import LogWatch

@Suite("Exchange and pattern formats")
struct ExchangeAndPatternTests {
    static let header = """
        #Software: Microsoft Exchange Server
        #Version: 15.0.0.0
        #Log-type: SMTP Receive Protocol Log
        #Date: 2026-11-23T02:00:00.000Z
        #Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context
        """

    static func run(_ text: String) -> [LogEvidence] {
        var parser = LogParser(formats: [ExchangeFormat()], parseTimes: true, now: Timestamp(seconds: 1_795_000_000))
        var found: [LogEvidence] = []
        var splitter = LineSplitter()
        splitter.feed(Array((text + "\n").utf8)) { line in if let e = parser.parse(line) { found.append(e) } }
        return found
    }

    @Test("a 535 5.7.3 is blamed on the session's remote endpoint, with the username Exchange named")
    func exchange() {
        let found = Self.run(
            Self.header + "\n" + """
                2026-11-23T02:03:14.100Z,EX1\\Client Frontend EX1,08DC1,0,10.0.0.5:587,203.0.113.9:51234,+,,
                2026-11-23T02:03:14.110Z,EX1\\Client Frontend EX1,08DC1,5,10.0.0.5:587,203.0.113.9:51234,<,AUTH LOGIN,
                2026-11-23T02:03:14.120Z,EX1\\Client Frontend EX1,08DC1,6,10.0.0.5:587,203.0.113.9:51234,*,admin@example.org,Inbound AUTH LOGIN failed because of LogonDenied
                2026-11-23T02:03:14.125Z,EX1\\Client Frontend EX1,08DC1,7,10.0.0.5:587,203.0.113.9:51234,>,535 5.7.3 Authentication unsuccessful,
                2026-11-23T02:03:15.000Z,EX1\\Client Frontend EX1,08DC1,8,10.0.0.5:587,203.0.113.9:51234,-,,Local
                2026-11-23T02:03:16.000Z,EX1\\Client Frontend EX1,08DC2,1,10.0.0.5:587,[2001:db8::5]:40000,>,535 5.7.3 Authentication unsuccessful,
                2026-11-23T02:03:20.000Z,EX1\\Client Frontend EX1,08DC3,9,10.0.0.5:587,198.51.100.7:40000,*,"EXAMPLE\\alice, the admin",authenticated
                2026-11-23T02:03:21.000Z,EX1\\Client Frontend EX1,08DC4,9,10.0.0.5:587,198.51.100.8:40000,>,"535 5.7.3 Authentication unsuccessful, 192.0.2.1",
                """)
        #expect(found.count == 4)
        #expect(found[0].client == IPAddress("203.0.113.9") && found[0].username == "admin@example.org" && found[0].outcome == .failure)
        #expect(found[0].time == Timestamp(nanoseconds: LineTime.epochSeconds(year: 2026, month: 11, day: 23, hour: 2, minute: 3, second: 14)! * 1_000_000_000 + 125_000_000))
        #expect(found[1].client == IPAddress("2001:db8::5") && found[1].username == "")
        #expect(found[2].outcome == .success && found[2].username == "EXAMPLE\\alice, the admin" && found[2].client == IPAddress("198.51.100.7"))
        // Text in the data field cannot move the blame.
        #expect(found[3].client == IPAddress("198.51.100.8"))
    }

    @Test("the #Fields header sets the columns")
    func reorderedFields() {
        let found = Self.run("""
            #Fields: date-time,session-id,remote-endpoint,event,data
            2026-11-23T02:03:14Z,S1,192.0.2.55:1000,>,535 5.7.3 Authentication unsuccessful
            """)
        #expect(found.map(\.client) == [IPAddress("192.0.2.55")!])
    }

    @Test("user patterns: named groups, matched against the whole message")
    func patterns() throws {
        let format = try PatternFormat([#"login failed for (?<username>\S+) from (?<address>[0-9a-f.:]+)"#])
        let line = Array("Nov 23 00:00:01 host myapp[1]: login failed for bob from 192.0.2.3".utf8)
        let parsed = SyslogLine(line[...])!
        #expect(format.match(line: line[...], message: parsed.message, program: parsed.program) == .attempt(rule: "pattern_1", client: IPAddress("192.0.2.3")!, username: "bob", outcome: .failure, count: 1))
        // Whole message only: trailing text means no match.
        let longer = Array("Nov 23 00:00:01 host myapp[1]: login failed for bob from 192.0.2.3 (x)".utf8)
        let parsedLonger = SyslogLine(longer[...])!
        #expect(format.match(line: longer[...], message: parsedLonger.message, program: parsedLonger.program) == nil)
        #expect(throws: PatternFormat.Invalid.self) { try PatternFormat(["no address group (\\d+)"]) }
        #expect(throws: PatternFormat.Invalid.self) { try PatternFormat(["(?<address>[unclosed"]) }
    }
}

@Suite("The guard's own event log")
struct EventsFormatTests {
    @Test("proxy attempts are read back, default credentials named; the watcher's own are skipped")
    func events() {
        let lines = [
            #"{"time":"2026-11-23T01:00:00.000Z","event":"auth","source":"proxy","session":"s1","client_ip":"192.0.2.1","tls":true,"mechanism":"PLAIN","username":"admin","outcome":"failure","reply":535,"decision":"allow","reasons":[],"delay_ms":0,"default_credential":true}"#,
            #"{"time":"2026-11-23T01:00:01.000Z","event":"auth","source":"proxy","session":"s2","client_ip":"192.0.2.1","tls":true,"mechanism":"PLAIN","username":"alice","outcome":"success","reply":235,"decision":"allow","reasons":[],"delay_ms":0}"#,
            #"{"time":"2026-11-23T01:00:02.000Z","event":"auth","source":"log_watch","session":"postfix/sasl_failed","client_ip":"192.0.2.9","tls":false,"mechanism":"OTHER","username":"x","outcome":"failure","reply":535,"decision":"allow","reasons":[],"delay_ms":0}"#,
            #"{"time":"2026-11-23T01:00:03.000Z","event":"ban","scope":"ip","key":"192.0.2.1"}"#,
        ]
        let format = EventsFormat()
        let found = lines.map { format.match(line: Array($0.utf8)[...], message: [][...], program: [][...]) }
        #expect(found[0] == .attempt(rule: "default_credential", client: IPAddress("192.0.2.1")!, username: "admin", outcome: .failure, count: 1))
        #expect(found[1] == .attempt(rule: "auth_success", client: IPAddress("192.0.2.1")!, username: "alice", outcome: .success, count: 1))
        #expect(found[2] == nil && found[3] == nil)
        var parser = LogParser(formats: [EventsFormat()], parseTimes: true, now: Timestamp(seconds: 0))
        let evidence = parser.parse(Array(lines[0].utf8)[...])
        #expect(evidence?.time == Timestamp(seconds: LineTime.epochSeconds(year: 2026, month: 11, day: 23, hour: 1, minute: 0, second: 0)!))
        #expect(evidence?.attempt(at: Timestamp(seconds: 0)).credential.isDefaultPassword == true)
    }

    @Test("Postfix's AUTH rate limit is counted as dropped, not as a guess")
    func rateLimit() {
        #expect(
            FormatTests.match("Nov 23 00:45:38 mx postfix/smtpd[1]: warning: Authentication rate limit exceeded: 6 from unknown[192.0.2.33] for service smtp")
                == .attempt(rule: "auth_rate_limit", client: IPAddress("192.0.2.33")!, username: "", outcome: .abandoned, count: 1))
    }
}
