// BackendPenaltyWatch: one alert when the backend's AUTH answers turn into 454s or slow
// ones, never for a backend that simply says "wrong password" fast.

import GuardCore
import Testing

@testable import SMTPProxy

@Suite("Backend penalty watch")
struct BackendPenaltyWatchTests {
    let start = Timestamp(nanoseconds: 1_800_000_000_000_000_000)

    @Test("a backend answering 535 at once raises nothing (the control)")
    func healthyBackend() {
        var watch = BackendPenaltyWatch(backend: "127.0.0.1:25")
        for i in 0..<200 {
            #expect(watch.note(code: i % 10 == 0 ? 235 : 535, waited: .milliseconds(30), at: self.start + .seconds(Int64(i))) == nil)
        }
    }

    @Test("454 answers past the share raise one alert that names the cause and the fixes")
    func temporaryFailures() throws {
        var watch = BackendPenaltyWatch(backend: "127.0.0.1:25")
        var alerts: [Alert] = []
        for i in 0..<60 {
            // Every second answer a 454: 50 %.
            if let alert = watch.note(code: i % 2 == 0 ? 454 : 535, waited: .seconds(1), at: self.start + .seconds(Int64(i))) {
                alerts.append(alert)
            }
        }
        #expect(alerts.count == 1)
        let alert = try #require(alerts.first)
        #expect(alert.kind == .backendPenalty)
        #expect(alert.message.contains("rate-limiting the guard's own address"))
        #expect(alert.message.contains("xclient"))
        #expect(alert.message.contains("proxy-v2"))
        #expect(alert.message.contains("penalty"))
    }

    @Test("too few answers say nothing; slow answers count like 454s")
    func slowAnswers() {
        var watch = BackendPenaltyWatch(backend: "b")
        for i in 0..<9 { #expect(watch.note(code: 535, waited: .seconds(8), at: self.start + .seconds(Int64(i))) == nil) }
        #expect(watch.note(code: 535, waited: .seconds(8), at: self.start + .seconds(9))?.kind == .backendPenalty)
    }

    @Test("old answers leave the window; a second alert only after the share fell and an hour passed")
    func rearms() {
        var watch = BackendPenaltyWatch(backend: "b")
        var t = self.start
        func note(_ code: Int) -> Alert? {
            t = t + .seconds(1)
            return watch.note(code: code, waited: .milliseconds(10), at: t)
        }
        var first = 0
        for _ in 0..<20 where note(454) != nil { first += 1 }
        #expect(first == 1)
        // Still penalised after ten minutes: no second alert (not re-armed).
        t = t + .seconds(600)
        for _ in 0..<20 { #expect(note(454) == nil) }
        #expect(watch.current.answers == 20)  // the earlier ones left the window
        // Healthy again, then penalised again more than an hour after the first alert.
        for _ in 0..<200 { _ = note(535) }
        t = t + .seconds(3600)
        var second = 0
        for _ in 0..<20 where note(454) != nil { second += 1 }
        #expect(second == 1)
    }
}
