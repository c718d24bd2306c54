// A sliding-window counter in six slots. The window of length W is cut into six slots of
// W/6; the total is the sum of the slots whose time lies within the window, so a failure
// is forgotten between 5/6·W and W after it happened. No allocation: sixteen bytes with
// UInt16 slots (the engine's failure counts, saturating), more with wider ones (sending).

/// The engine's failure and attempt windows.
typealias FailureWindow = SlidingWindow<UInt16>

struct SlidingWindow<Count: FixedWidthInteger & UnsignedInteger> {
    static var slotCount: UInt32 { 6 }
    private var slots = InlineArray<6, Count>(repeating: 0)
    /// Number of the newest slot written (time / slot width).
    private var head: UInt32 = 0

    init() {}

    /// Adds `weight` at slot number `slot`. Late events (an out-of-order log line) land in
    /// their slot while it is still inside the window and are dropped after.
    mutating func add(_ weight: Count, slot: UInt32) {
        if slot > self.head {
            let gap = slot - self.head
            if gap >= Self.slotCount {
                for i in 0..<6 { self.slots[i] = 0 }
            } else {
                var n = self.head + 1
                while n <= slot {
                    self.slots[Int(n % Self.slotCount)] = 0
                    n += 1
                }
            }
            self.head = slot
        } else if self.head - slot >= Self.slotCount {
            return
        }
        let index = Int(slot % Self.slotCount)
        let (sum, overflow) = self.slots[index].addingReportingOverflow(weight)
        self.slots[index] = overflow ? .max : sum
    }

    /// The total of the window that ends at slot number `slot`.
    func total(slot: UInt32) -> Int {
        if slot >= self.head && slot - self.head >= Self.slotCount { return 0 }
        let oldest = slot >= Self.slotCount - 1 ? slot - (Self.slotCount - 1) : 0
        var sum = 0
        var n = min(self.head, slot)
        while true {
            if n < oldest || self.head - n >= Self.slotCount { break }
            sum += Int(self.slots[Int(n % Self.slotCount)])
            if n == 0 { break }
            n -= 1
        }
        return sum
    }

    var isEmpty: Bool {
        for i in 0..<6 where self.slots[i] != 0 { return false }
        return true
    }
}

/// Slot arithmetic for one window length.
struct WindowClock {
    let slotSeconds: UInt32

    init(window: Duration) {
        self.slotSeconds = UInt32(clamping: max(1, window.wholeSeconds / Int64(FailureWindow.slotCount)))
    }

    @inline(__always) func slot(_ seconds: UInt32) -> UInt32 { seconds / self.slotSeconds }
}
