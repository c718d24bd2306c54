import Testing

@testable import GuardCore

@Suite("Sliding windows and tables")
struct WindowTests {
    @Test("a window sums its six slots and forgets older ones")
    func slidingWindow() {
        var window = FailureWindow()
        window.add(1, slot: 10)
        window.add(2, slot: 11)
        window.add(3, slot: 15)
        #expect(window.total(slot: 15) == 6)
        #expect(window.total(slot: 16) == 5)  // slot 10 left the window
        #expect(window.total(slot: 17) == 3)
        #expect(window.total(slot: 21) == 0)
        window.add(1, slot: 100)
        #expect(window.total(slot: 100) == 1)
        // A late event inside the window counts; one outside is dropped.
        window.add(4, slot: 97)
        window.add(9, slot: 90)
        #expect(window.total(slot: 100) == 5)
    }

    @Test("counts saturate instead of wrapping")
    func saturation() {
        var window = FailureWindow()
        window.add(UInt16.max, slot: 1)
        window.add(10, slot: 1)
        #expect(window.total(slot: 1) == Int(UInt16.max))
    }

    @Test("the LRU table evicts the least recently used entry")
    func lru() {
        var table = LRUTable<Int, String>(capacity: 3)
        for i in 1...3 { table.update(i, make: { "v\(i)" }) { _ in } }
        _ = table.modifyIfPresent(1) { _ in }  // 1 is now the newest
        let (_, evicted) = table.update(4, make: { "v4" }) { _ in }
        #expect(evicted?.key == 2)
        #expect(table.count == 3)
        #expect(table.peek(2) == nil)
        #expect(table.entries().map(\.key) == [4, 1, 3])
        #expect(table.remove(1) == "v1")
        table.update(5, make: { "v5" }) { _ in }
        table.update(6, make: { "v6" }) { _ in }
        #expect(table.entries().map(\.key) == [6, 5, 4])
    }

    @Test("durations parse in every documented form")
    func durations() {
        #expect(parseDuration("500ms") == .milliseconds(500))
        #expect(parseDuration("30s") == .seconds(30))
        #expect(parseDuration("10m") == .seconds(600))
        #expect(parseDuration("24h") == .seconds(86_400))
        #expect(parseDuration("7d") == .seconds(604_800))
        #expect(parseDuration("1h30m") == .seconds(5400))
        #expect(parseDuration("45") == .seconds(45))
        for bad in ["", "m", "10x", "10m5", "-5s", "1.5h"] { #expect(parseDuration(bad) == nil, "\(bad)") }
        #expect(Duration.seconds(5400).compactText == "1h30m")
        #expect(Duration.milliseconds(1500).compactText == "1s500ms")
    }
}
