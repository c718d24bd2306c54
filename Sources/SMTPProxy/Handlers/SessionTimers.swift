// A session's ids and timers, as the handler keeps them (the machine says when to start and
// cancel each; this is only the bookkeeping of deadlines and scheduled tasks).

import NIOCore
import SMTPWire
import Synchronization

/// Session ids: a per-process random prefix and a counter (no system call per session).
enum SessionIDs {
    private static let prefix = String(UInt32.random(in: 0x1000...0xFFFF), radix: 16)
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let n = self.counter.wrappingAdd(1, ordering: .relaxed).newValue
        return self.prefix + String(n, radix: 16)
    }
}

/// The session's timers: when each is due, and the task that will look at it.
struct SessionTimers {
    static let count = 7
    var deadlines = InlineArray<7, NIODeadline?>(repeating: nil)
    var tasks = InlineArray<7, (task: Scheduled<Void>, due: NIODeadline)?>(repeating: nil)

    static func index(_ timer: SessionTimer) -> Int {
        switch timer {
        case .backendConnect: return 0
        case .backendReply: return 1
        case .clientIdle: return 2
        case .tarpit: return 3
        case .tlsHandshake: return 4
        case .dataRate: return 5
        case .session: return 6
        }
    }

    mutating func cancelAll() {
        for i in 0..<Self.count {
            self.tasks[i]?.task.cancel()
            self.tasks[i] = nil
            self.deadlines[i] = nil
        }
    }
}
