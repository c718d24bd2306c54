// The guess budget: one client lands at most guard.limits.ip_failures_short password checks
// at the backend, whatever its parallelism and whatever the backend answers; a ban decided
// while an attempt waits stops it; a prefix is banned only for several of its addresses.

import Testing

@testable import GuardCore

@Suite("Guess budget")
struct BudgetTests {
    @Test("at most the budget in flight at once; the client that asked for more is banned when its budget is spent")
    func inFlightBudget() {
        var h = Harness()
        let ip = "198.51.100.20"
        for i in 1...5 { #expect(h.ask(ip, "user\(i)").verdict == .allow, "attempt \(i)") }
        let sixth = h.ask(ip, "user6")
        #expect(sixth.verdict == .tempFail)
        #expect(sixth.reasons == [.parallelAttempts])
        #expect(h.engine.inFlight(of: IPAddress(ip)!) == 5)
        // The five land as failures: the fifth spends the budget, and the client has already
        // asked for a sixth check (told to try later): that bans it, as the sixth attempt would
        // have. hydra -t 16 stops once its list is through, every other try answered 454.
        for i in 1...4 {
            h.hash &+= 1
            #expect(h.engine.decide(h.attempt(ip, "user\(i)", .failure, hash: h.hash)).bans.isEmpty, "failure \(i)")
        }
        h.hash &+= 1
        let fifth = h.engine.decide(h.attempt(ip, "user5", .failure, hash: h.hash))
        #expect(fifth.bans.map(\.key) == [.ip(IPAddress(ip)!)])
        #expect(fifth.reasons.contains(.guessBudget))
        let next = h.ask(ip, "user7")
        #expect(next.verdict == .refuse)
        #expect(next.reasons.contains(.ipBanned))
        // The spent budget did not count against the username.
        #expect(h.engine.ban(for: .username("user7")) == nil)
    }

    @Test("a client that never asked for more than its budget is banned by its next attempt, not by its fifth failure")
    func spentWithoutAskingForMore() {
        var h = Harness()
        let ip = "198.51.100.22"
        for i in 1...5 {
            #expect(h.ask(ip, "user\(i)").verdict == .allow)
            h.hash &+= 1
            #expect(h.engine.decide(h.attempt(ip, "user\(i)", .failure, hash: h.hash)).bans.isEmpty, "failure \(i)")
        }
        let next = h.ask(ip, "user6")
        #expect(next.verdict == .refuse)
        #expect(next.reasons.contains(.guessBudget))
        #expect(next.bans.map(\.key) == [.ip(IPAddress(ip)!)])
    }

    @Test("with failures counted, only what is left of the budget may run in parallel")
    func partlySpent() {
        var h = Harness()
        let ip = "198.51.100.21"
        h.fail(ip, "a")
        h.fail(ip, "b")
        for i in 1...3 { #expect(h.ask(ip, "u\(i)").verdict == .allow, "attempt \(i)") }
        #expect(h.ask(ip, "u4").reasons == [.parallelAttempts])
    }

    @Test("a 4xx after the credentials is an unverified guess: it spends the budget and bans, but never locks the username")
    func unverifiedGuesses() {
        var h = Harness()
        let ip = "198.51.100.22"
        for i in 1...5 {
            #expect(h.ask(ip, "user\(i)").verdict == .allow, "attempt \(i)")
            h.hash &+= 1
            let answer = h.engine.decide(h.attempt(ip, "user\(i)", .unverified, hash: h.hash))
            #expect(answer.verdict == .tempFail)
            #expect(answer.reasons.contains(.unverifiedGuess))
        }
        let sixth = h.ask(ip, "user6")
        #expect(sixth.verdict == .refuse)
        #expect(sixth.bans.map(\.key) == [.ip(IPAddress(ip)!)])

        // Unverified guesses on one username from many addresses do not lock it …
        var spread = Harness()
        for i in 0..<12 {
            spread.hash &+= 1
            _ = spread.engine.decide(spread.attempt("10.9.\(i).1", "carol", .unverified, hash: spread.hash))
        }
        #expect(spread.engine.ban(for: .username("carol")) == nil)
        // … where the same number of checked failures does (the control).
        for i in 0..<12 { spread.fail("10.8.\(i).1", "dave") }
        #expect(spread.engine.ban(for: .username("dave")) != nil)
    }

    @Test("the same pair's unverified guesses fill the pair's budget too")
    func unverifiedPair() {
        var h = Harness()
        for _ in 1...3 {
            h.hash &+= 1
            _ = h.engine.decide(h.attempt("198.51.100.23", "alice", .unverified, hash: h.hash))
        }
        #expect(h.ask("198.51.100.23", "alice").reasons.contains(.pairLimit))
        #expect(h.ask("198.51.100.23", "bob").verdict == .allow)
    }

    @Test("a backend down before the credentials (temporary failure, abandoned) counts nothing")
    func outageCountsNothing() {
        let h = Harness()
        let ip = "198.51.100.24"
        for i in 1...25 {
            _ = h.ask(ip, "alice\(i % 3)")
            _ = h.engine.decide(h.attempt(ip, "alice\(i % 3)", i % 2 == 0 ? .tempFailure : .abandoned, hash: UInt16(i)))
        }
        #expect(h.engine.activeBans().isEmpty)
        #expect(h.engine.recentFailures(of: IPAddress(ip)!) == 0)
        #expect(h.ask(ip, "alice").verdict == .allow)
    }

    @Test("one address never bans its prefix; three addresses do")
    func prefixNeedsSeveralAddresses() {
        var h = Harness {
            $0.limits.prefixFailuresShort = 4
            $0.limits.ipFailuresShort = 100
            $0.limits.ipFailuresLong = 100
            $0.limits.usernamesPerIP = 100
        }
        for i in 0..<20 { h.fail("192.0.2.10", "user\(i % 4)") }
        #expect(h.engine.connectionBan(for: IPAddress("192.0.2.99")!) == nil)
        #expect(h.engine.activeBans().isEmpty)
        // Control: failures from two more addresses of the /24 ban it.
        h.fail("192.0.2.11")
        #expect(h.engine.connectionBan(for: IPAddress("192.0.2.99")!) == nil)
        let third = h.fail("192.0.2.12")
        #expect(third.bans.map(\.key) == [.prefix(IPNetwork("192.0.2.0/24")!)])
        #expect(h.engine.connectionBan(for: IPAddress("192.0.2.99")!) != nil)
    }

    @Test("attempts refused for a banned address do not count again for its prefix")
    func bannedRefusalsDoNotCount() {
        var h = Harness {
            $0.limits.prefixFailuresShort = 9
            $0.limits.prefixMinClients = 1
        }
        for _ in 1...6 { h.fail("192.0.2.30") }
        #expect(h.engine.ban(for: .ip(IPAddress("192.0.2.30")!)) != nil)
        for i in 0..<50 { #expect(h.ask("192.0.2.30", "u\(i)").verdict == .refuse) }
        #expect(h.engine.ban(for: .prefix(IPNetwork("192.0.2.0/24")!)) == nil)
        // Control: real failures from a neighbour still add up to the prefix limit.
        for _ in 1...4 { h.fail("192.0.2.31") }
        #expect(h.engine.ban(for: .prefix(IPNetwork("192.0.2.0/24")!)) != nil)
    }

    @Test("a ban decided while an attempt waits in the tarpit stops it; without one it goes ahead")
    func confirmAfterTarpit() {
        var h = Harness()
        let ip = "198.51.100.25"
        h.fail(ip, "a")
        h.fail(ip, "b")
        let waiting = h.ask(ip, "c")
        #expect(waiting.verdict == .allow)
        #expect(waiting.delay > .zero)
        // Control: nothing happened meanwhile.
        #expect(h.engine.confirm(h.attempt(ip, "c", .pending)).verdict == .allow)
        #expect(h.engine.inFlight(of: IPAddress(ip)!) == 1)
        // Another connection of the client is banned meanwhile.
        h.engine.placeBan(.ip(IPAddress(ip)!), duration: .seconds(600))
        let stopped = h.engine.confirm(h.attempt(ip, "c", .pending))
        #expect(stopped.verdict == .refuse)
        #expect(stopped.reasons == [.ipBanned])
        #expect(h.engine.inFlight(of: IPAddress(ip)!) == 0)
        // A prefix ban and a username lock stop it too.
        let other = Harness()
        _ = other.ask("198.51.100.26", "d")
        other.engine.placeBan(.prefix(IPNetwork("198.51.100.0/24")!), duration: .seconds(60))
        #expect(other.engine.confirm(other.attempt("198.51.100.26", "d", .pending)).reasons == [.prefixBanned])
        other.engine.placeBan(.username("e"), duration: .seconds(60))
        #expect(other.engine.confirm(other.attempt("203.0.113.77", "e", .pending)).reasons == [.usernameLocked])
        #expect(other.engine.confirm(other.attempt("203.0.113.77", "f", .pending)).verdict == .allow)
    }
}
