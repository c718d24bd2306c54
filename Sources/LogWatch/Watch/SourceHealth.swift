// Whether a log source reads anything. A source that has read no line for
// `watch.silence_alert` (a log that moved or cannot be read, a journald filter that matches
// nothing, rsyslog not installed) raises one alert and counts as silent until a line comes
// again. Pure: the watch service tells it how many lines each poll read, and when.

import GuardCore

public struct SourceHealth: Sendable {
    public enum Change: Sendable, Equatable {
        /// No line for the silence interval: the alert to raise.
        case fellSilent(Alert)
        /// A line again, after this long without one.
        case readAgain(after: Duration)
    }

    public let name: String
    public let silence: Duration
    public private(set) var lastLine: Timestamp
    public private(set) var silent = false

    /// `start`: when the source began to be read (a source that never reads anything is
    /// silent from then).
    public init(name: String, silence: Duration, start: Timestamp) {
        self.name = name
        self.silence = silence
        self.lastLine = start
    }

    public mutating func note(lines: Int, at now: Timestamp) -> Change? {
        if lines > 0 {
            defer { (self.lastLine, self.silent) = (now, false) }
            return self.silent ? .readAgain(after: now - self.lastLine) : nil
        }
        guard self.silence > .zero, !self.silent, now - self.lastLine >= self.silence else { return nil }
        self.silent = true
        return .fellSilent(
            Alert(
                kind: .sourceSilent, severity: .warning, time: now, username: "", client: nil,
                message: "the watch source \"\(self.name)\" has read no line for \(self.silence.compactText): the log may have moved or "
                    + "become unreadable, or the filter matches nothing (Debian 12 has no /var/log/mail.log without rsyslog; its Postfix "
                    + "logs to journald as postfix@-.service). Bans from this log stop until it reads again. Check with "
                    + "`smtpguard watch --check` on the log, or journalctl with the same unit."))
    }
}
