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

    public static func - (lhs: Timestamp, rhs: Duration) -> Timestamp {
        Timestamp(nanoseconds: lhs.nanoseconds &- rhs.nanosecondsClamped)
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
        let (year, month, day) = Timestamp.civil(days: days)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(rem / 3600, 2)):\(pad(rem / 60 % 60, 2)):\(pad(rem % 60, 2)).\(pad(abs(millis), 3))Z"
    }

    public var description: String { self.iso8601 }

    /// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01 (Howard
    /// Hinnant's civil-from-days algorithm).
    public static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Seconds since 1970 for a UTC civil time (days-from-civil).
    public static func epochSeconds(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Int64? {
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    }

    /// Reads RFC 3339: `2026-11-23T14:05:09Z`, with optional fractions of a second and an
    /// offset (`+01:00`) in place of Z.
    public init?(iso8601 text: String) {
        let b = Array(text.utf8)
        func number(_ at: Int, _ count: Int) -> Int? {
            guard at + count <= b.count else { return nil }
            var value = 0
            for byte in b[at..<(at + count)] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard b.count >= 20, b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116 || b[10] == 32, b[13] == 58, b[16] == 58,
            let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2), let minute = number(14, 2),
            let second = number(17, 2), let seconds = Timestamp.epochSeconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        else { return nil }
        var index = 19
        var nanos: Int64 = 0
        if index < b.count && b[index] == 46 {
            index += 1
            var scale: Int64 = 100_000_000
            let start = index
            while index < b.count, b[index] >= 48 && b[index] <= 57 {
                nanos += Int64(b[index] - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offset: Int64 = 0
        guard index < b.count else { return nil }
        if b[index] == 90 || b[index] == 122 {
            index += 1
        } else if b[index] == 43 || b[index] == 45, b.count == index + 6, b[index + 3] == 58, let h = number(index + 1, 2), let m = number(index + 4, 2) {
            offset = Int64(h * 3600 + m * 60) * (b[index] == 43 ? 1 : -1)
            index += 6
        } else {
            return nil
        }
        guard index == b.count else { return nil }
        self.init(nanoseconds: (seconds - offset) * 1_000_000_000 + nanos)
    }
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
