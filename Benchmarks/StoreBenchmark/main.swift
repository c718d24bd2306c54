// store-bench: what durable state costs. (1) AUTH decisions per second with every attempt
// recorded, in memory only versus queued for the SQLite store and flushed every second by a
// concurrent task (the guard's set-up), and how far the store lags at the end; (2) start-up
// time with N active bans stored (open, load, restore).
//
//   swift build -c release --product store-bench && .build/release/store-bench [--attempts 1000000] [--bans 200000]

import Foundation
import GuardCore
import GuardStore

func argument(_ name: String, default value: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let number = Int(arguments[index + 1]) else { return value }
    return number
}

let attempts = argument("--attempts", default: 1_000_000)
let banCount = argument("--bans", default: 200_000)
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("smtpguard-store-bench-\(getpid())")
try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: folder) }

let policy = GuardPolicy()
let start = Timestamp(seconds: 1_800_000_000)

/// Decides `attempts` failures from 100,000 addresses, recording each as the proxy does.
@MainActor
func run(sink: any EventSink, recordTo writer: StoreWriter?) -> Double {
    let clock = ManualClock(start)
    let guardEngine = Guard(policy: policy, clock: clock, events: sink, seed: 7)
    let began = ContinuousClock.now
    for i in 0..<attempts {
        let client = IPAddress(ipv4: 0x0A00_0000 | UInt32(i % 100_000))
        let attempt = AuthAttempt(time: clock.now(), client: client, username: "user\(i % 5000)", outcome: .failure, source: .logWatch)
        let decision = guardEngine.decide(attempt)
        let event = GuardEvent.attempt(AttemptRecord(attempt: attempt, session: "", replyCode: 535, decision: decision))
        sink.record(event)
        if i % 1000 == 0 { clock.advance(by: .milliseconds(10)) }
    }
    let seconds = (ContinuousClock.now - began).seconds
    _ = writer
    return Double(attempts) / seconds
}

extension Duration {
    var seconds: Double { Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18 }
}

print("store-bench: \(attempts) AUTH decisions (failures from 100,000 addresses, each recorded), then start-up with \(banCount) bans")
let memory = run(sink: DiscardingEventSink(), recordTo: nil)
print(String(format: "in memory only:                    %10.0f decisions/s", memory))

let store = try await SQLiteStateStore.open(path: folder.appendingPathComponent("bench.db").path)
let writer = StoreWriter(store: store, maxPending: 10_000_000)
let flusher = Task {
    var written = 0
    while !Task.isCancelled {
        try? await Task.sleep(for: .seconds(1))
        written += (try? await writer.flush()) ?? 0
    }
    return written
}
let persisted = run(sink: writer, recordTo: writer)
let drainBegan = ContinuousClock.now
while writer.written < attempts { try await Task.sleep(for: .milliseconds(20)) }
let drain = (ContinuousClock.now - drainBegan).seconds
flusher.cancel()
print(String(format: "queued for SQLite, flushed each 1s: %10.0f decisions/s (%.1f %% of in memory); the store caught up %.2f s after the last decision", persisted, persisted / memory * 100, drain))
await store.close()

// Start-up with many bans.
let bansPath = folder.appendingPathComponent("bans.db").path
let banStore = try await SQLiteStateStore.open(path: bansPath)
var events: [GuardEvent] = []
events.reserveCapacity(10_000)
for i in 0..<banCount {
    let key = BanKey.ip(IPAddress(ipv4: 0x6400_0000 | UInt32(i)))
    events.append(.ban(Ban(key: key, since: start, until: start + .seconds(86_400), reason: .ipFailures, offense: 1)))
    if events.count == 10_000 {
        try await banStore.write(events)
        events.removeAll(keepingCapacity: true)
    }
}
try await banStore.write(events)
await banStore.close()
let began = ContinuousClock.now
let reopened = try await SQLiteStateStore.open(path: bansPath)
let now = start + .seconds(60)
let state = try await reopened.load(now: now, since: now + .seconds(-86_400), successesSince: now + .seconds(-86_400), bansSince: now + .seconds(-30 * 86_400))
let loaded = ContinuousClock.now
let restored = Guard(policy: policy, clock: ManualClock(now), seed: 1)
restored.restore(attempts: state.attempts, activeBans: state.bans, banHistory: state.banHistory)
let done = ContinuousClock.now
await reopened.close()
precondition(restored.activeBans().count == banCount, "not every ban came back")
print(String(format: "start-up with %d bans: open and load %.2f s, restore %.2f s, %.2f s in all", banCount, (loaded - began).seconds, (done - loaded).seconds, (done - began).seconds))
