// Engine benchmark: decisions per second on one core with 1,000,000 distinct attacking
// addresses, and the resident memory of the engine once it tracks them all.
//
//   swift run -c release engine-bench [--clients N] [--rounds R]
//
// Each round hands the engine one failed AUTH attempt from every address (a password-
// guessing botnet in which each bot tries once), through the public Guard API, lock
// included. Round 1 creates the records; later rounds find them. Results go to BENCHMARKS.md.

import Foundation
import GuardCore

func residentMemory() -> (rss: Int, peak: Int) {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
    func value(_ key: String) -> Int {
        for line in status.split(separator: "\n") where line.hasPrefix(key) {
            let digits = line.split(separator: " ").compactMap { Int($0) }
            return (digits.first ?? 0) * 1024
        }
        return 0
    }
    return (value("VmRSS:"), value("VmHWM:"))
}

var clients = 1_000_000
var rounds = 3
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--clients": clients = Int(arguments.next() ?? "") ?? clients
    case "--rounds": rounds = Int(arguments.next() ?? "") ?? rounds
    default:
        print("usage: engine-bench [--clients N] [--rounds R]")
        exit(2)
    }
}

// Ordinary usernames: three failures per address stay under every ban threshold, so the
// figures are those of tracking, not of a ban table (see --ban-storm for that).
let usernames = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
var policy = GuardPolicy()
policy.maxTrackedKeys = max(clients, 1000)
// The memory figure is the engine's: no event sink, no logging.
let clock = ManualClock()
let engine = Guard(policy: policy, clock: clock, seed: 42)
let start = clock.now()
let before = residentMemory()

// Addresses spread over 10.0.0.0/8-like space: 1,000,000 distinct /32s, ~3,900 /24s.
let attempts: [AuthAttempt] = (0..<clients).map { i in
    AuthAttempt(
        time: start, client: IPAddress(ipv4: 0x0A00_0000 &+ UInt32(i)), clientPort: 40000, username: usernames[i % usernames.count],
        mechanism: .login, outcome: .failure, credential: CredentialEvidence(passwordHash: UInt16(i & 0xFFF)))
}
let afterInput = residentMemory()

print("engine-bench: \(clients) distinct client addresses, \(rounds) rounds, one failed attempt per address per round")
var bans = 0
for round in 1...rounds {
    let began = ContinuousClock.now
    var issued = 0
    for var attempt in attempts {
        attempt.time = start + .seconds(Int64(round))
        attempt.credential.passwordHash = UInt16((Int(attempt.credential.passwordHash ?? 0) + round) & 0xFFF)
        issued &+= engine.decide(attempt).bans.count
    }
    let elapsed = ContinuousClock.now - began
    bans += issued
    let rate = Double(clients) / elapsed.secondsDouble
    print(String(format: "round %d: %.0f decisions/s (%.3f s, %d bans issued)", round, rate, elapsed.secondsDouble, issued))
}
let counts = engine.counts
let after = residentMemory()
let engineBytes = after.rss - afterInput.rss
print("tracked: \(counts.clients) clients, \(counts.prefixes) prefixes, \(counts.usernames) usernames, \(counts.bans) bans")
print(String(format: "resident memory: %.1f MiB total, %.1f MiB of it the engine (input array %.1f MiB); peak %.1f MiB",
    Double(after.rss) / 1_048_576, Double(engineBytes) / 1_048_576, Double(afterInput.rss - before.rss) / 1_048_576,
    Double(after.peak) / 1_048_576))
