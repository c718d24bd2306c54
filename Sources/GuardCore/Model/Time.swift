// Time for the engine. Every source stamps its attempts (a log replay carries the log's own
// times), and the engine reads "now" only through an injected GuardClock.

import Foundation
import Synchronization

/// A point in wall-clock time, nanoseconds since the Unix epoch.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    public init(seconds: Int64) { self.nanoseconds = seconds * 1_000_000_000 }

    /// Whole seconds since the epoch, clamped to what the engine's compact records hold.
    public var seconds: UInt32 {
        UInt32(clamping: self.nanoseconds / 1_000_000_000)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static func + (lhs: Timestamp, rhs: Duration) -> Timestamp {
        Timestamp(nanoseconds: lhs.nanoseconds &+ rhs.nanosecondsClamped)
    }

    public static func - (lhs: Timestamp, rhs: Timestamp) -> Duration {
        .nanoseconds(lhs.nanoseconds &- rhs.nanoseconds)
    }

    /// RFC 3339 in UTC with milliseconds, as the event log writes it.
    public var iso8601: String {
        let secs = self.nanoseconds / 1_000_000_000
        let millis = (self.nanoseconds % 1_000_000_000) / 1_000_000
        var days = secs / 86_400
        var rem = secs % 86_400
        if rem < 0 { rem += 86_400; days -= 1 }
        // Civil from days (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(rem / 3600, 2)):\(pad(rem / 60 % 60, 2)):\(pad(rem % 60, 2)).\(pad(abs(millis), 3))Z"
    }

    public var description: String { self.iso8601 }
}

extension Duration {
    /// The duration in nanoseconds, saturating at Int64's range.
    public var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = self.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return scaled &+ attoseconds / 1_000_000_000
    }

    /// Whole seconds, rounded down, at least zero.
    public var wholeSeconds: Int64 { max(0, self.components.seconds) }

    /// Seconds as a Double, for display and scaling.
    public var secondsDouble: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }
}

/// Where the engine reads the current time.
public protocol GuardClock: Sendable {
    func now() -> Timestamp
}

/// The system's wall clock.
public struct SystemClock: GuardClock {
    public init() {}
    public func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }
}

/// A clock that moves only when told to: for tests and replays.
public final class ManualClock: GuardClock {
    private let current: Mutex<Timestamp>

    public init(_ start: Timestamp = Timestamp(seconds: 1_767_225_600)) {  // 2026-01-01T00:00:00Z
        self.current = Mutex(start)
    }

    public func now() -> Timestamp { self.current.withLock { $0 } }

    public func advance(by duration: Duration) {
        self.current.withLock { $0 = $0 + duration }
    }

    public func set(_ time: Timestamp) {
        self.current.withLock { $0 = time }
    }
}
