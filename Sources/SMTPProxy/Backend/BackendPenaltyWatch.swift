// BackendPenaltyWatch: notices when the backend penalises the guard itself. With
// `backend.identity: none` the mail server sees every client as the guard's address, so its
// per-address defences (Dovecot's auth penalty, Postfix's anvil limits) slow or refuse every
// user at once as soon as one bot guesses through the guard. The watch keeps the backend's
// answers to AUTH credentials over a few minutes; when a large share of them are temporary
// failures (4xx) or slow, it raises one alert that names the cause and the fixes.
//
// A pure value (answers in, at most one alert out); `BackendPenaltyMonitor` shares it between
// sessions and publishes the alert.

import GuardCore
import Logging
import NIOCore
import Synchronization

public struct BackendPenaltyWatch: Sendable {
    /// The answers looked at: those of the last five minutes.
    public static let window: Duration = .seconds(300)
    /// An answer at least this slow counts as a penalty (Dovecot's normal failure delay is 2 s;
    /// its penalty adds 2, 4, 8, then 15 s).
    public static let slow: Duration = .seconds(5)
    /// Fewer answers than this in the window say nothing.
    public static let minimumAnswers = 10
    /// The share of penalised answers that raises the alert.
    public static let alertShare = 0.3
    /// After an alert, the next one only once the share fell below half of `alertShare`
    /// and rose again, and not within an hour.
    public static let quietPeriod: Duration = .seconds(3600)

    public let backend: String
    /// The most answers kept (the oldest go first): a busy server's last few thousand say enough.
    public static let maxAnswers = 4096
    private var answers = CircularBuffer<(second: UInt32, penalised: Bool)>(initialCapacity: 64)
    private var penalised = 0
    private var armed = true
    private var lastAlert: Timestamp?

    public init(backend: String) {
        self.backend = backend
    }

    /// The share of penalised answers in the window now, and how many answers it holds.
    public var current: (penalised: Int, answers: Int) { (self.penalised, self.answers.count) }

    /// One backend answer to AUTH credentials: its code and how long it took.
    public mutating func note(code: Int, waited: Duration, at now: Timestamp) -> Alert? {
        let second = now.seconds
        let isPenalised = (400..<500).contains(code) || waited >= Self.slow
        self.answers.append((second, isPenalised))
        if isPenalised { self.penalised += 1 }
        let span = UInt32(clamping: Self.window.wholeSeconds)
        let oldest = second > span ? second - span : 0
        while let first = self.answers.first, first.second < oldest || self.answers.count > Self.maxAnswers {
            if first.penalised { self.penalised -= 1 }
            self.answers.removeFirst()
        }
        guard self.answers.count >= Self.minimumAnswers else { return nil }
        let share = Double(self.penalised) / Double(self.answers.count)
        if share < Self.alertShare / 2 { self.armed = true }
        guard self.armed, share >= Self.alertShare else { return nil }
        if let last = self.lastAlert, now - last < Self.quietPeriod { return nil }
        self.armed = false
        self.lastAlert = now
        let percent = Int((share * 100).rounded())
        return Alert(
            kind: .backendPenalty, severity: .warning, time: now, username: "", client: nil,
            message: "the backend \(self.backend) is rate-limiting the guard's own address: \(self.penalised) of its last "
                + "\(self.answers.count) AUTH answers (\(percent)%) in \(Self.window.compactText) were temporary failures (4xx) "
                + "or took \(Self.slow.compactText) or more. With backend.identity none the mail server sees every client as the guard, "
                + "so its per-address penalty hits every user. Fix: backend.identity xclient (Postfix: add the guard's address to "
                + "smtpd_authorized_xclient_hosts) or proxy-v2 (smtpd_upstream_proxy_protocol = haproxy), or turn the backend's "
                + "per-address auth penalty off for the guard's address (Dovecot: its anvil auth penalty).")
    }
}

/// The watch shared by every session of one proxy: publishes its alert and logs it.
public final class BackendPenaltyMonitor: Sendable {
    private let watch: Mutex<BackendPenaltyWatch>
    private let events: any EventSink
    private let logger: Logger

    public init(backend: String, events: any EventSink, logger: Logger) {
        self.watch = Mutex(BackendPenaltyWatch(backend: backend))
        self.events = events
        self.logger = logger
    }

    public func note(code: Int, waited: Duration, at now: Timestamp) {
        guard let alert = self.watch.withLock({ $0.note(code: code, waited: waited, at: now) }) else { return }
        self.logger.warning("\(alert.message)", metadata: ["alert": .string(alert.kind.rawValue)])
        self.events.record(.alert(alert))
    }
}
