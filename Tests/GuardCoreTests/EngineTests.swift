import Synchronization
import Testing

@testable import GuardCore

/// Collects what the engine publishes.
final class CollectingSink: EventSink {
    private let store = Mutex<[GuardEvent]>([])
    func record(_ event: GuardEvent) { self.store.withLock { $0.append(event) } }
    var events: [GuardEvent] { self.store.withLock { $0 } }
    var bans: [Ban] { self.events.compactMap { if case .ban(let ban) = $0 { return ban } else { return nil } } }
    var unbans: [Ban] { self.events.compactMap { if case .unban(let ban, _, _) = $0 { return ban } else { return nil } } }
    var alerts: [Alert] { self.events.compactMap { if case .alert(let alert) = $0 { return alert } else { return nil } } }
}

/// A guard on a manual clock, with no jitter unless asked.
struct Harness {
    let clock = ManualClock()
    let sink = CollectingSink()
    let engine: Guard
    var hash: UInt16 = 0

    init(_ configure: (inout GuardPolicy) -> Void = { _ in }) {
        var policy = GuardPolicy()
        policy.bans.jitter = 0
        configure(&policy)
        self.engine = Guard(policy: policy, clock: self.clock, events: self.sink, seed: 7)
    }

    func attempt(_ ip: String, _ user: String, _ outcome: AuthOutcome, hash: UInt16? = nil, defaultPassword: Bool = false) -> AuthAttempt {
        AuthAttempt(
            time: self.clock.now(), client: IPAddress(ip)!, clientPort: 40000, username: user, mechanism: .plain,
            outcome: outcome, credential: CredentialEvidence(passwordHash: hash, isDefaultPassword: defaultPassword))
    }

    /// A failure with a password never tried before.
    @discardableResult
    mutating func fail(_ ip: String, _ user: String = "alice", defaultPassword: Bool = false) -> Decision {
        self.hash &+= 1
        return self.engine.decide(self.attempt(ip, user, .failure, hash: self.hash, defaultPassword: defaultPassword))
    }

    func ask(_ ip: String, _ user: String = "alice") -> Decision {
        self.engine.decide(self.attempt(ip, user, .pending, hash: 4000))
    }

    func succeed(_ ip: String, _ user: String = "alice", defaultPassword: Bool = false) -> Decision {
        self.engine.decide(self.attempt(ip, user, .success, hash: 4001, defaultPassword: defaultPassword))
    }
}

@Suite("Engine rules")
struct EngineTests {
    @Test("the 6th failure inside the short window bans the client")
    func sixthFailureBans() {
        var h = Harness()
        for i in 1...5 {
            let decision = h.fail("198.51.100.7")
            #expect(decision.bans.isEmpty, "failure \(i)")
        }
        let sixth = h.fail("198.51.100.7")
        #expect(sixth.bans.count == 1)
        #expect(sixth.bans.first?.key == .ip(IPAddress("198.51.100.7")!))
        #expect(sixth.reasons.contains(.ipFailures))
        #expect(sixth.bansClient)
        #expect(h.engine.connectionBan(for: IPAddress("198.51.100.7")!) != nil)
        #expect(h.engine.connectionBan(for: IPAddress("198.51.100.8")!) == nil)
        #expect(h.ask("198.51.100.7").verdict == .refuse)
        #expect(h.sink.bans.count == 1)
    }

    @Test("failures older than the window are forgotten")
    func windowForgets() {
        var h = Harness()
        for _ in 1...5 { h.fail("198.51.100.7") }
        h.clock.advance(by: .seconds(11 * 60))
        #expect(h.fail("198.51.100.7").bans.isEmpty)
    }

    @Test("a slow attack spread over hours still adds up in the long window")
    func longWindow() {
        var h = Harness()
        var banned = false
        for i in 1...21 {
            let decision = h.fail("198.51.100.9", "user\(i % 3)")
            if !decision.bans.isEmpty { banned = true; #expect(i == 21) }
            h.clock.advance(by: .seconds(45 * 60))
        }
        #expect(banned)
    }

    @Test("the same wrong password repeated does not escalate")
    func repeatedPassword() {
        let h = Harness()
        for _ in 1...50 {
            let decision = h.engine.decide(h.attempt("203.0.113.5", "alice", .failure, hash: 0x123))
            #expect(decision.bans.isEmpty)
        }
        #expect(h.engine.connectionBan(for: IPAddress("203.0.113.5")!) == nil)
        #expect(h.ask("203.0.113.5").verdict == .allow)
        let again = h.engine.decide(h.attempt("203.0.113.5", "alice", .failure, hash: 0x123))
        #expect(again.reasons == [.repeatedPassword])
    }

    @Test("a distributed attack locks the username for unknown places while its owner still logs in from a known one")
    func distributedAttack() {
        var h = Harness()
        #expect(h.succeed("192.0.2.10").verdict == .allow)  // the owner's usual place
        var locked: Ban?
        for i in 0..<200 {
            let ip = "10.\(i / 250).\(i % 250).1"  // 200 attackers, each in its own /24, one attempt each
            let decision = h.fail(ip)
            if let ban = decision.bans.first(where: { $0.key.scope == .username }) { locked = ban }
        }
        #expect(locked?.key == .username("alice"))
        #expect(locked?.reason == .distributedAttack)
        #expect(h.sink.alerts.contains { $0.kind == .distributedAttack && $0.username == "alice" })
        // No attacking address was banned: each tried only once.
        #expect(h.engine.activeBans().allSatisfy { $0.key.scope == .username })
        let stranger = h.ask("10.9.9.9")
        #expect(stranger.verdict == .refuse)
        #expect(stranger.reasons.contains(.usernameLocked))
        let owner = h.ask("192.0.2.10")
        #expect(owner.verdict == .allow)
        #expect(owner.reasons == [.knownPlace])
        // Same network as the known place counts as known too.
        #expect(h.ask("192.0.2.99").verdict == .allow)
        // Other accounts are not affected.
        #expect(h.ask("10.9.9.9", "bob").verdict == .allow)
    }

    @Test("bans escalate for a repeat offender")
    func escalation() {
        var h = Harness()
        for _ in 1...6 { h.fail("198.51.100.66") }
        let first = h.engine.ban(for: .ip(IPAddress("198.51.100.66")!))
        #expect(first?.duration == .seconds(900))
        h.clock.advance(by: .seconds(901))
        #expect(h.engine.expireBans().count == 1)
        #expect(h.sink.unbans.count == 1)
        for _ in 1...6 { h.fail("198.51.100.66", "bob") }
        let second = h.engine.ban(for: .ip(IPAddress("198.51.100.66")!))
        #expect(second?.offense == 2)
        #expect(second?.duration == .seconds(3600))
        h.clock.advance(by: .seconds(3601))
        h.engine.expireBans()
        for _ in 1...6 { h.fail("198.51.100.66", "carol") }
        #expect(h.engine.ban(for: .ip(IPAddress("198.51.100.66")!))?.duration == .seconds(14_400))
    }

    @Test("ban jitter stays inside the configured spread")
    func jitter() {
        var h = Harness { $0.bans.jitter = 0.1 }
        var durations: Set<Duration> = []
        for i in 0..<20 {
            for _ in 1...6 { h.fail("198.18.\(i).1") }
            if let ban = h.engine.ban(for: .ip(IPAddress("198.18.\(i).1")!)) { durations.insert(ban.duration) }
        }
        #expect(durations.count > 10)
        #expect(durations.allSatisfy { $0 >= .seconds(810) && $0 <= .seconds(990) })
    }

    @Test("trusted networks are never banned, tarpitted or locked out")
    func trusted() {
        var h = Harness { $0.trustedNetworks = NetworkList([IPNetwork("192.0.2.0/24")!]) }
        for _ in 1...100 {
            #expect(h.fail("192.0.2.5").bans.isEmpty)
        }
        let decision = h.ask("192.0.2.5")
        #expect(decision.verdict == .allow)
        #expect(decision.delay == .zero)
        #expect(decision.reasons == [.trustedNetwork])
        #expect(h.engine.connectionBan(for: IPAddress("192.0.2.5")!) == nil)
        // A default password accepted from a trusted network is not refused.
        #expect(h.succeed("192.0.2.5", "admin", defaultPassword: true).verdict == .allow)
    }

    @Test("eviction keeps active bans")
    func evictionKeepsBans() {
        var h = Harness { $0.maxTrackedKeys = 50 }
        for _ in 1...6 { h.fail("198.51.100.1") }
        #expect(h.engine.connectionBan(for: IPAddress("198.51.100.1")!) != nil)
        for i in 0..<500 { h.fail("10.0.\(i / 200).\(i % 200)", "user\(i)") }
        #expect(h.engine.counts.clients <= 50)
        #expect(h.engine.connectionBan(for: IPAddress("198.51.100.1")!) != nil)
        #expect(h.ask("198.51.100.1").verdict == .refuse)
    }

    @Test("the tarpit grows with the client's recent failures, and known places never wait")
    func tarpit() {
        var h = Harness()
        #expect(h.ask("203.0.113.20").delay == .zero)
        h.fail("203.0.113.20")
        #expect(h.ask("203.0.113.20").delay == .zero)
        h.fail("203.0.113.20", "bob")
        #expect(h.ask("203.0.113.20", "carol").delay == .seconds(1))
        h.fail("203.0.113.20", "carol")
        #expect(h.ask("203.0.113.20", "dave").delay == .seconds(2))
        h.fail("203.0.113.20", "dave")
        #expect(h.ask("203.0.113.20", "erin").delay == .seconds(4))
        _ = h.engine.decide(h.attempt("203.0.113.20", "erin", .abandoned))  // erin left in the tarpit
        // A reconnect from another port is the same client: the delay follows it.
        let other = AuthAttempt(time: h.clock.now(), client: IPAddress("203.0.113.20")!, clientPort: 51000, username: "frank", outcome: .pending)
        #expect(h.engine.decide(other).delay == .seconds(4))
        _ = h.succeed("203.0.113.21", "zed")
        #expect(h.ask("203.0.113.21", "zed").delay == .zero)
    }

    @Test("the tarpit is capped")
    func tarpitCap() {
        var h = Harness {
            $0.limits.ipFailuresShort = 1000; $0.limits.ipFailuresLong = 1000; $0.limits.usernamesPerIP = 1000
            $0.limits.prefixFailuresShort = 1000; $0.limits.prefixFailuresLong = 1000
        }
        for i in 0..<40 { h.fail("203.0.113.30", "u\(i)") }
        #expect(h.ask("203.0.113.30", "x").delay == .seconds(20))
    }

    @Test("denied usernames are refused locally and weigh more")
    func deniedUsername() {
        let h = Harness()
        let first = h.engine.decide(h.attempt("203.0.113.40", "Guest", .pending, hash: 1))
        #expect(first.verdict == .refuse)
        #expect(first.reasons.contains(.deniedUsername))
        #expect(first.bans.isEmpty)
        #expect(h.engine.recentFailures(of: IPAddress("203.0.113.40")!) == 3)
        // Weight 3 each: 3 + 3 = 6 > 5.
        let second = h.engine.decide(h.attempt("203.0.113.40", "guest", .pending, hash: 2))
        #expect(second.verdict == .refuse)
        #expect(second.bansClient)
    }

    @Test("a failure with a default credential weighs more")
    func defaultCredentialWeight() {
        var h = Harness()
        #expect(h.fail("203.0.113.41", "alice", defaultPassword: true).reasons.contains(.defaultCredential))
        let second = h.fail("203.0.113.41", "alice", defaultPassword: true)
        #expect(second.bans.first?.key == .ip(IPAddress("203.0.113.41")!))
        // A default username weighs as much.
        var g = Harness()
        g.fail("203.0.113.42", "admin")
        #expect(g.fail("203.0.113.42", "admin").bansClient)
    }

    @Test("a default password the backend accepts is refused, the account locked and a critical alert raised")
    func weakCredentialFirewall() {
        let h = Harness()
        let decision = h.succeed("203.0.113.50", "Admin", defaultPassword: true)
        #expect(decision.verdict == .refuse)
        #expect(decision.reasons == [.weakCredentialAccepted])
        #expect(decision.bans.first?.key == .username("admin"))
        #expect(decision.bans.first?.exemptKnownPlaces == false)
        let alert = h.sink.alerts.first
        #expect(alert?.kind == .weakCredentialAccepted)
        #expect(alert?.severity == .critical)
        #expect(alert?.message.contains("admin") == true)
        // Locked for every untrusted place, even one that logged in before.
        #expect(h.ask("203.0.113.50", "admin").verdict == .refuse)
        #expect(h.ask("198.51.100.3", "admin").reasons.contains(.usernameLocked))
    }

    @Test("a success right after many failures raises a possible-compromise alert")
    func possibleCompromise() {
        var h = Harness()
        for i in 0..<5 { h.fail("203.0.113.60", "user\(i)") }
        let decision = h.succeed("203.0.113.60", "carol")
        #expect(decision.verdict == .allow)
        #expect(decision.reasons.contains(.possibleCompromise))
        #expect(h.sink.alerts.contains { $0.kind == .possibleCompromise && $0.username == "carol" })
        // The guessing place does not become a known place.
        #expect(!h.engine.isKnownPlace(IPAddress("203.0.113.60")!, username: "carol"))
        // An ordinary success does.
        _ = h.succeed("203.0.113.61", "dave")
        #expect(h.engine.isKnownPlace(IPAddress("203.0.113.61")!, username: "dave"))
    }

    @Test("spraying many usernames from one client bans it")
    func spraying() {
        var h = Harness()
        for i in 0..<5 { #expect(h.fail("203.0.113.70", "user\(i)").bans.isEmpty) }
        let sixth = h.fail("203.0.113.70", "user5")
        #expect(sixth.reasons.contains(.spraying) || sixth.reasons.contains(.ipFailures))
        #expect(sixth.bansClient)
    }

    @Test("many failures across a /24 ban the prefix")
    func prefixBan() {
        var h = Harness()
        var prefixBan: Ban?
        for host in 1...7 {
            for user in ["a", "b", "c"] {
                if let ban = h.fail("198.51.100.\(host)", user).bans.first(where: { $0.key.scope == .prefix }) { prefixBan = ban }
            }
        }
        #expect(prefixBan?.key == .prefix(IPNetwork("198.51.100.0/24")!))
        #expect(h.engine.connectionBan(for: IPAddress("198.51.100.200")!) != nil)
        #expect(h.engine.connectionBan(for: IPAddress("198.51.101.1")!) == nil)
    }

    @Test("one username failing from one client is refused for that pair only")
    func pairLimit() {
        var h = Harness()
        for _ in 1...3 { h.fail("203.0.113.80", "alice") }
        let fourth = h.ask("203.0.113.80", "alice")
        #expect(fourth.verdict == .refuse)
        #expect(fourth.reasons.contains(.pairLimit))
        #expect(h.ask("203.0.113.80", "bob").verdict == .allow)
        #expect(h.ask("203.0.113.81", "alice").verdict == .allow)
    }

    @Test("too many attempts from one client get the temporary failure")
    func rateLimit() {
        let h = Harness { $0.limits.attemptsPerIP = 10 }
        for _ in 1...10 {
            #expect(h.ask("203.0.113.90").verdict == .allow)
            _ = h.engine.decide(h.attempt("203.0.113.90", "alice", .tempFailure))  // each one answered
        }
        let eleventh = h.ask("203.0.113.90")
        #expect(eleventh.verdict == .tempFail)
        #expect(eleventh.reasons == [.rateLimited])
    }

    @Test("IPv6 clients are counted per /64")
    func ipv6Grouping() {
        var h = Harness()
        for i in 1...6 { h.fail("2001:db8:1:2::\(i)") }
        #expect(h.engine.connectionBan(for: IPAddress("2001:db8:1:2::ffff")!) != nil)
        #expect(h.engine.connectionBan(for: IPAddress("2001:db8:1:3::1")!) == nil)
    }

    @Test("usernames are trimmed and case-folded; a default domain joins user and user@domain")
    func usernames() {
        #expect(GuardEngine.normalize("  Alice ", defaultDomain: "") == "alice")
        #expect(GuardEngine.normalize("alice", defaultDomain: "") == "alice")
        #expect(GuardEngine.normalize("alice@Example.COM", defaultDomain: "") == "alice@example.com")
        #expect(GuardEngine.normalize("alice", defaultDomain: "Example.com") == "alice@example.com")
        #expect(GuardEngine.normalize("alice@other.org", defaultDomain: "example.com") == "alice@other.org")
        var h = Harness()
        for _ in 1...3 { h.fail("203.0.113.100", " ALICE") }
        #expect(h.ask("203.0.113.100", "alice").reasons.contains(.pairLimit))
    }

    @Test("a manual ban and its lifting are published")
    func manualBan() {
        let h = Harness()
        let ban = h.engine.placeBan(.prefix(IPNetwork("203.0.113.0/24")!), duration: .seconds(60))
        #expect(h.engine.connectionBan(for: IPAddress("203.0.113.9")!) == ban)
        #expect(h.engine.liftBan(.prefix(IPNetwork("203.0.113.0/24")!)) == ban)
        #expect(h.engine.connectionBan(for: IPAddress("203.0.113.9")!) == nil)
        #expect(h.sink.bans.count == 1)
        #expect(h.sink.unbans.count == 1)
    }

    @Test("parallel connections do not multiply a client's guesses")
    func parallelAttempts() {
        var h = Harness()
        // A fresh client: five at once (the budget), the sixth must wait.
        for i in 1...5 { #expect(h.ask("203.0.113.111", "user\(i)").verdict == .allow, "in flight \(i)") }
        let sixth = h.ask("203.0.113.111", "user6")
        #expect(sixth.verdict == .tempFail)
        #expect(sixth.reasons == [.parallelAttempts])
        // With one failure already: four more at once.
        h.fail("203.0.113.110", "a")
        for i in 1...4 { #expect(h.ask("203.0.113.110", "u\(i)").verdict == .allow, "in flight \(i)") }
        #expect(h.ask("203.0.113.110", "u5").reasons == [.parallelAttempts])
        // An outcome lands, or a client goes away: room again.
        _ = h.engine.decide(h.attempt("203.0.113.110", "u1", .abandoned))
        #expect(h.ask("203.0.113.110", "u7").verdict == .allow)
        // A source that never asked (a log watcher) lands nothing.
        var report = h.attempt("203.0.113.110", "u2", .failure, hash: 999)
        report.source = .logWatch
        _ = h.engine.decide(report)
        #expect(h.engine.inFlight(of: IPAddress("203.0.113.110")!) == 4)
        // Known places are not held back.
        _ = h.succeed("203.0.113.112", "zed")
        for _ in 1...10 { #expect(h.ask("203.0.113.112", "zed").verdict == .allow) }
    }

    @Test("attempts never reported back are forgotten after five minutes")
    func staleInFlight() {
        let h = Harness()
        for i in 1...5 { _ = h.ask("203.0.113.113", "user\(i)") }
        #expect(h.ask("203.0.113.113", "user6").verdict == .tempFail)
        h.clock.advance(by: .seconds(301))
        #expect(h.ask("203.0.113.113", "user8").verdict == .allow)
    }

    @Test("retrying a counted password does not prolong the pair's block")
    func pairBlockNotProlonged() {
        var h = Harness()
        for _ in 1...3 { h.fail("203.0.113.120", "alice") }
        // The phone retries one password (new to the guard, so counted once) every 4 minutes.
        for minute in [4, 8, 12] {
            h.clock.advance(by: .seconds(240))
            let retry = h.engine.decide(h.attempt("203.0.113.120", "alice", .pending, hash: 77))
            #expect(retry.verdict == .refuse, "minute \(minute)")
            #expect(retry.reasons.contains(.pairLimit))
        }
        // The block runs 10 minutes from the last counted failure (minute 4), not from minute 12.
        h.clock.advance(by: .seconds(150))
        #expect(h.engine.decide(h.attempt("203.0.113.120", "alice", .pending, hash: 77)).verdict == .allow)
    }

    @Test("refusals of a locked account count against the client, not the account")
    func lockNotStretched() {
        var h = Harness { $0.limits.ipsPerUsername = 10_000 }
        for i in 0..<11 { h.fail("10.1.\(i).1") }  // the 11th failure in 10 minutes locks alice
        #expect(h.engine.ban(for: .username("alice")) != nil)
        for i in 0..<100 { _ = h.engine.decide(h.attempt("10.2.\(i).1", "alice", .pending, hash: UInt16(i))) }
        h.clock.advance(by: .seconds(31 * 60))
        h.engine.expireBans()
        // The 100 refused attempts did not count towards the 40 a day: one new failure does not lock again.
        #expect(h.fail("10.3.0.1").bans.isEmpty)
    }

    @Test("a refusal by the guard takes at least the minimum refusal delay")
    func minimumRefusalDelay() {
        let h = Harness()
        let decision = h.ask("203.0.113.130", "guest")
        #expect(decision.verdict == .refuse)
        #expect(decision.delay == .seconds(2))
    }
}
