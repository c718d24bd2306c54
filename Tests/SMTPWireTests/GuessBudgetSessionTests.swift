// The guess budget as the session carries it out: a backend answering 454 after the
// credentials still gets the client banned after the budget, and no more credentials reach
// it than the budget; an attempt waiting in the tarpit when its client is banned on another
// connection never reaches the backend.

import GuardCore
import NIOCore
import Testing

@testable import SMTPWire

@Suite("Guess budget in the session")
struct GuessBudgetSessionTests {
    static let client = "203.0.113.40"

    func plain(_ user: String, _ password: String) -> String {
        "AUTH PLAIN " + Base64.encode(Array("\0\(user)\0\(password)".utf8))
    }

    /// Sessions one after another from one client, each trying one password, against a
    /// backend that answers every password with 454 (or 535). Returns the credentials the
    /// backend received and whether the last session was refused at its AUTH.
    func attack(backendTempFails: Bool, sessions: Int) -> (credentials: Int, answers: [Int], outcomes: [AuthOutcome], guardEngine: Guard) {
        let clock = ManualClock()
        var policy = GuardPolicy()
        policy.tarpit.initial = .zero  // no waiting: this is about counting
        let guardEngine = Guard(policy: policy, clock: clock, seed: 1)
        var credentials = 0
        var answers: [Int] = []
        var outcomes: [AuthOutcome] = []
        for i in 1...sessions {
            guard guardEngine.connectionBan(for: IPAddress(Self.client)!) == nil else { break }
            var driver = SessionDriver(client: Self.client, guardEngine: guardEngine, clock: clock)
            driver.backend.tempFailAuth = backendTempFails
            driver.start()
            driver.client("EHLO x\r\n\(self.plain("user\(i)", "guess\(i)"))\r\n")
            credentials += driver.transcript.filter { $0.hasPrefix("B< AUTH PLAIN ") }.count
            #expect(driver.credentialsSent == driver.transcript.filter { $0.hasPrefix("B< AUTH PLAIN ") }.count)
            answers += driver.authAnswers
            outcomes += driver.records.map(\.0.outcome)
        }
        return (credentials, answers, outcomes, guardEngine)
    }

    @Test("a backend answering 454 after the credentials: banned after the budget, and no more credentials sent than it")
    func tempFailingBackend() {
        let run = self.attack(backendTempFails: true, sessions: 20)
        #expect(run.credentials == 5)
        #expect(run.answers == [454, 454, 454, 454, 454])
        #expect(run.outcomes.prefix(5).allSatisfy { $0 == .unverified })
        #expect(run.guardEngine.connectionBan(for: IPAddress(Self.client)!) != nil)
        // The username was never locked: 454 is not a password failure.
        #expect(run.guardEngine.activeBans().allSatisfy { $0.key.scope == .ip })
        // Control: a backend that says 535 bans after the same budget.
        let control = self.attack(backendTempFails: false, sessions: 20)
        #expect(control.credentials == 5)
        #expect(control.outcomes.prefix(5).allSatisfy { $0 == .failure })
        #expect(control.guardEngine.connectionBan(for: IPAddress(Self.client)!) != nil)
    }

    @Test("an attempt waiting in the tarpit when its client is banned elsewhere never reaches the backend")
    func banWhileInTarpit() {
        let clock = ManualClock()
        var policy = GuardPolicy()
        policy.tarpit.afterFailures = 0
        policy.tarpit.initial = .seconds(3)
        let guardEngine = Guard(policy: policy, clock: clock, seed: 1)
        var waiting = SessionDriver(client: Self.client, guardEngine: guardEngine, clock: clock)
        waiting.autoFireTarpit = false
        waiting.start()
        waiting.client("EHLO x\r\n\(self.plain("alice", "guess"))\r\n")
        #expect(waiting.transcript.contains("# tarpit 3s"))
        #expect(guardEngine.inFlight(of: IPAddress(Self.client)!) == 1)
        // Meanwhile another connection of the same client gets it banned.
        guardEngine.placeBan(.ip(IPAddress(Self.client)!), duration: .seconds(600), reason: .ipFailures)
        clock.advance(by: .seconds(3))
        waiting.fire(.tarpit)
        #expect(!waiting.transcript.contains { $0.hasPrefix("B< AUTH") })
        #expect(waiting.transcript.contains("# confirm alice -> refuse ip_banned"))
        #expect(waiting.transcript.contains("S: 535 5.7.8 Authentication credentials invalid"))
        #expect(waiting.closed)
        #expect(guardEngine.inFlight(of: IPAddress(Self.client)!) == 0)

        // Control: with no ban meanwhile the attempt goes to the backend after the tarpit.
        let other = Guard(policy: policy, clock: clock, seed: 1)
        var control = SessionDriver(client: Self.client, guardEngine: other, clock: clock)
        control.autoFireTarpit = false
        control.start()
        control.client("EHLO x\r\n\(self.plain("alice", "secret"))\r\n")
        clock.advance(by: .seconds(3))
        control.fire(.tarpit)
        #expect(control.transcript.contains { $0.hasPrefix("B< AUTH PLAIN ") })
        #expect(control.transcript.contains("S: 235 2.7.0 Authentication successful"))
    }
}
