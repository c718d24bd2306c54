// The time a log line was written, from its own prefix: traditional syslog ("Nov 23 02:03:14",
// no year: the year is supplied, and a December line read in January belongs to last year),
// RFC 3339 / ISO 8601 ("2026-11-23T02:03:14.5+01:00", Exchange's "…Z"), and Exim's
// "2026-11-23 02:03:14", and the guard's own JSON event lines. Used by `replay`; a live watcher uses the time it read the line.

import GuardCore

public enum LineTime {
    static let eventTime = Array("{\"time\":\"".utf8)
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].map { Array($0.utf8) }

    /// The time at the start of `line`, or nil. `year` and `month` are those of "now", for
    /// syslog lines that have no year.
    public static func parse(_ line: ArraySlice<UInt8>, year: Int, month: Int) -> Timestamp? {
        // The guard's own event log: {"time":"2026-11-23T01:00:00.000Z",…
        if line.hasPrefix(Self.eventTime, at: line.startIndex) {
            return self.parse(line[(line.startIndex + Self.eventTime.count)...], year: year, month: month)
        }
        guard line.count >= 15 else { return nil }
        let s = line.startIndex
        func digits(_ at: Int, _ count: Int) -> Int? {
            var value = 0
            for i in at..<(at + count) {
                guard i < line.endIndex, line[i] >= 0x30 && line[i] <= 0x39 else { return nil }
                value = value * 10 + Int(line[i] - 0x30)
            }
            return value
        }
        if let y = digits(s, 4), line[s + 4] == UInt8(ascii: "-") {
            guard line.count >= 19, let mo = digits(s + 5, 2), let d = digits(s + 8, 2), let h = digits(s + 11, 2), let mi = digits(s + 14, 2),
                let se = digits(s + 17, 2)
            else { return nil }
            var i = s + 19
            var nanos: Int64 = 0
            if i < line.endIndex && (line[i] == UInt8(ascii: ".") || line[i] == UInt8(ascii: ",")) {
                i += 1
                var scale: Int64 = 100_000_000
                while i < line.endIndex, line[i] >= 0x30 && line[i] <= 0x39 {
                    nanos += Int64(line[i] - 0x30) * scale
                    scale /= 10
                    i += 1
                }
            }
            var offset = 0
            if i < line.endIndex && (line[i] == UInt8(ascii: "+") || line[i] == UInt8(ascii: "-")), let oh = digits(i + 1, 2) {
                let om = digits(i + 4, 2) ?? digits(i + 3, 2) ?? 0
                offset = (oh * 3600 + om * 60) * (line[i] == UInt8(ascii: "-") ? -1 : 1)
            }
            guard let seconds = self.epochSeconds(year: y, month: mo, day: d, hour: h, minute: mi, second: se) else { return nil }
            return Timestamp(nanoseconds: (seconds - Int64(offset)) * 1_000_000_000 + nanos)
        }
        guard let monthIndex = self.months.firstIndex(where: { line.hasPrefix($0, at: s) }), line[s + 3] == 0x20 else { return nil }
        let dayStart = line[s + 4] == 0x20 ? s + 5 : s + 4
        guard let d = digits(dayStart, line[s + 4] == 0x20 ? 1 : 2) else { return nil }
        let t = dayStart + (line[s + 4] == 0x20 ? 1 : 2) + 1
        guard let h = digits(t, 2), let mi = digits(t + 3, 2), let se = digits(t + 6, 2) else { return nil }
        // A line from a later month than now is from last year (a log read across New Year).
        let lineYear = monthIndex + 1 > month ? year - 1 : year
        guard let seconds = self.epochSeconds(year: lineYear, month: monthIndex + 1, day: d, hour: h, minute: mi, second: se) else { return nil }
        return Timestamp(seconds: seconds)
    }

    /// Seconds since 1970 for a UTC civil time.
    public static func epochSeconds(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Int64? {
        Timestamp.epochSeconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    }

    /// The civil (year, month) of a time, UTC.
    public static func yearMonth(_ time: Timestamp) -> (year: Int, month: Int) {
        let days = Int(time.nanoseconds / 1_000_000_000 / 86_400) + 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month)
    }
}
