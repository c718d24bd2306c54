// Sending limits: what an authenticated user may send per minute, hour and day, the
// overrides, the alert and the lock.

import Testing

@testable import GuardCore

@Suite("Sending limits")
struct SendingTests {
    let clock = ManualClock()
    let sink = CollectingSink()

    func makeGuard(_ configure: (inout SendingPolicy) -> Void = { _ in }) -> Guard {
        var policy = GuardPolicy()
        configure(&policy.sending)
        return Guard(policy: policy, clock: self.clock, events: self.sink, seed: 1)
    }

    func send(_ engine: Guard, _ user: String, _ kind: SendingRequest.Kind, from client: String = "198.51.100.7") -> SendingDecision {
        engine.checkSending(SendingRequest(time: self.clock.now(), username: user, client: IPAddress(client), kind: kind, source: .proxy))
    }

    @Test("recipients past the per-minute limit are refused, and allowed again once the minute has passed")
    func perMinute() {
        let engine = self.makeGuard { $0.defaults.recipientsPerMinute = 10 }
        for i in 1...10 { #expect(self.send(engine, "alice", .recipients(1)).allowed, "recipient \(i)") }
        let refused = self.send(engine, "alice", .recipients(1))
        #expect(!refused.allowed)
        #expect(refused.excess == SendingExcess(counts: .recipients, window: .minute, limit: 10, sent: 10, addresses: 1))
        #expect(refused.text.contains("10 recipients per minute"))
        // A refused request is not counted: still refused, still 10 sent.
        #expect(self.send(engine, "alice", .recipients(1)).excess?.sent == 10)
        self.clock.advance(by: .seconds(61))
        #expect(self.send(engine, "alice", .recipients(1)).allowed)
        // Other users are not affected.
        #expect(self.send(engine, "bob", .recipients(5)).allowed)
    }

    @Test("the hour and day windows add up over minutes; messages are counted apart from recipients")
    func longerWindows() {
        let engine = self.makeGuard {
            $0.defaults.recipientsPerMinute = 0
            $0.defaults.recipientsPerHour = 30
            $0.defaults.messagesPerDay = 3
        }
        for _ in 0..<3 {
            #expect(self.send(engine, "alice", .recipients(10)).allowed)
            self.clock.advance(by: .seconds(120))
        }
        #expect(self.send(engine, "alice", .recipients(1)).excess?.window == .hour)
        for _ in 0..<3 { #expect(self.send(engine, "alice", .message).allowed) }
        let message = self.send(engine, "alice", .message)
        #expect(message.excess?.window == .day && message.excess?.counts == .messages)
        self.clock.advance(by: .seconds(3600))
        #expect(self.send(engine, "alice", .recipients(1)).allowed)
        #expect(!self.send(engine, "alice", .message).allowed)
    }

    @Test("one alert per user and interval, naming the user, the count, the window and the addresses")
    func alert() {
        let engine = self.makeGuard {
            $0.defaults.recipientsPerMinute = 4
            $0.alertInterval = .seconds(600)
        }
        for (i, client) in ["198.51.100.1", "198.51.100.2", "203.0.113.9", "198.51.100.1"].enumerated() {
            #expect(self.send(engine, "Alice@Example.ORG", .recipients(1), from: client).allowed, "\(i)")
        }
        #expect(!self.send(engine, "alice@example.org", .recipients(1)).allowed)
        #expect(!self.send(engine, "alice@example.org", .recipients(1)).allowed)
        #expect(self.sink.alerts.count == 1)
        let alert = self.sink.alerts.first
        #expect(alert?.kind == .possibleCompromise)
        #expect(alert?.message.hasPrefix("possible compromised account: alice@example.org sent 4 recipients in 1 minute from 4 addresses") == true)
        // Each refusal is an event.
        #expect(self.sink.events.filter { if case .sending = $0 { true } else { false } }.count == 2)
        self.clock.advance(by: .seconds(601))
        for _ in 0..<5 { _ = self.send(engine, "alice@example.org", .recipients(1)) }
        #expect(self.sink.alerts.count == 2)
    }

    @Test("lock_account locks AUTH and sending until lifted, for known places too")
    func lock() {
        let engine = self.makeGuard {
            $0.defaults.messagesPerMinute = 1
            $0.lockAccount = true
        }
        // alice logged in from here before: a known place.
        _ = engine.decide(AuthAttempt(time: self.clock.now(), client: IPAddress("198.51.100.7")!, username: "alice", outcome: .success))
        #expect(self.send(engine, "alice", .message).allowed)
        let refused = self.send(engine, "alice", .message)
        #expect(refused.lock?.reason == .sendingLimit)
        #expect(refused.lock?.exemptKnownPlaces == false)
        self.clock.advance(by: .seconds(7 * 86_400))
        #expect(self.send(engine, "alice", .recipients(1)).lock != nil, "still locked a week later")
        let auth = engine.decide(AuthAttempt(time: self.clock.now(), client: IPAddress("198.51.100.7")!, username: "alice", outcome: .pending))
        #expect(auth.verdict != .allow, "AUTH is refused while locked, from a known place too")
        engine.liftBan(.username("alice"))
        #expect(self.send(engine, "alice", .message).allowed)
    }

    @Test("a lock from password guessing does not stop the owner's mail; a weak-credential lock does")
    func whichLocksStopSending() {
        let engine = self.makeGuard()
        engine.placeBan(.username("bob"), duration: .seconds(600), reason: .usernameFailures)
        #expect(self.send(engine, "bob", .message).allowed)
        engine.placeBan(.username("carol"), duration: .seconds(600), reason: .weakCredentialAccepted)
        #expect(self.send(engine, "carol", .message).lock != nil)
    }

    @Test("off: nothing is counted or refused")
    func disabled() {
        let engine = self.makeGuard {
            $0.enabled = false
            $0.defaults.recipientsPerMinute = 1
        }
        for _ in 0..<10 { #expect(self.send(engine, "alice", .recipients(1)).allowed) }
    }

    @Test("overrides: a user's own line, then its groups' (first listed wins), then its domain's, then the defaults")
    func overrides() throws {
        var policy = SendingPolicy()
        policy.groups = [
            try SendingGroup(parsing: "bulk: newsletter@example.org, @lists.example.org"),
            try SendingGroup(parsing: "staff: newsletter@example.org ceo@example.org"),
        ]
        policy.overrides = [
            try SendingOverride(parsing: "@example.org: recipients_per_hour=100"),
            try SendingOverride(parsing: "group:staff: recipients_per_day=3_000 messages_per_day=10"),
            try SendingOverride(parsing: "group:bulk: recipients_per_day=50000, recipients_per_minute=0"),
            try SendingOverride(parsing: "ceo@example.org: recipients_per_day=9000"),
        ]
        let defaults = SendingLimits()
        #expect(policy.limits(for: "someone@elsewhere.test") == defaults)
        #expect(policy.limits(for: "pat@example.org").recipientsPerHour == 100)
        let newsletter = policy.limits(for: "newsletter@example.org")
        #expect(newsletter.recipientsPerDay == 50000 && newsletter.recipientsPerMinute == 0)
        #expect(newsletter.messagesPerDay == 10, "staff's other windows still apply")
        #expect(newsletter.recipientsPerHour == 100, "the domain's line under the groups'")
        #expect(policy.limits(for: "x@lists.example.org").recipientsPerDay == 50000)
        #expect(policy.limits(for: "ceo@example.org").recipientsPerDay == 9000)
        #expect(policy.limits(for: "ceo@example.org").messagesPerDay == 10)
    }

    @Test("bad override and group lines are refused with what is wrong")
    func badLines() {
        #expect(throws: ConfigValueError.self) { try SendingOverride(parsing: "alice recipients_per_hour=5") }
        #expect(throws: ConfigValueError.self) { try SendingOverride(parsing: "alice: recipients_per_week=5") }
        #expect(throws: ConfigValueError.self) { try SendingOverride(parsing: "alice: recipients_per_hour=-1") }
        #expect(throws: ConfigValueError.self) { try SendingOverride(parsing: "alice:") }
        #expect(throws: ConfigValueError.self) { try SendingGroup(parsing: "bulk:") }
        #expect(throws: ConfigValueError.self) { try SendingGroup(parsing: "no colon") }
        let (_, issues) = GuardConfiguration.from(
            values: [("sending.overrides", .list(["group:nosuch: messages_per_day=5"]), 3)], file: "t.yaml")
        #expect(issues.contains { $0.key == "sending.overrides" && $0.message.contains("sending.groups does not define") })
    }

    @Test("the Dovecot endpoint must be protected; actions for Postfix are checked")
    func policyConfiguration() {
        let (_, open) = GuardConfiguration.from(values: [("dovecot_policy.listen", .scalar("127.0.0.1:8026"), 1)], file: "t.yaml")
        #expect(open.contains { $0.key == "dovecot_policy.listen" && $0.message.contains("must be protected") })
        let (protected, none) = GuardConfiguration.from(
            values: [("dovecot_policy.listen", .scalar("127.0.0.1:8026"), 1), ("dovecot_policy.api_header", .scalar("k3y"), 2)], file: "t.yaml")
        #expect(none.isEmpty)
        #expect(protected.dovecotPolicy.apiKey?.name == "x-api-key" && protected.dovecotPolicy.apiKey?.value == "k3y")
        let (_, action) = GuardConfiguration.from(values: [("postfix_policy.ban_action", .scalar("MAYBE later"), 1)], file: "t.yaml")
        #expect(action.contains { $0.key == "postfix_policy.ban_action" })
        let (_, listen) = GuardConfiguration.from(values: [("postfix_policy.listen", .list(["unix:relative.sock"]), 1)], file: "t.yaml")
        #expect(listen.contains { $0.key == "postfix_policy.listen" })
    }
}
