// The event sink that keeps the StatsBook, shared by the API's handlers.

import GuardCore
import Synchronization

public final class StatsRecorder: EventSink, Sendable {
    private let book: Mutex<StatsBook>
    private let normalize: @Sendable (String) -> String

    public init(policy: GuardPolicy, keysPerMinute: Int = 128) {
        self.book = Mutex(StatsBook(policy: policy, keysPerMinute: keysPerMinute))
        let defaultDomain = policy.credentials.defaultDomain
        self.normalize = { GuardEngine.normalize($0, defaultDomain: defaultDomain) }
    }

    public func record(_ event: GuardEvent) {
        self.book.withLock { $0.record(event, normalize: self.normalize) }
    }

    /// Attempts reloaded from the state at start (their refusals are not known: not counted).
    public func absorb(_ attempts: [AuthAttempt]) {
        self.book.withLock { book in
            for attempt in attempts { book.count(attempt, refused: false, normalize: self.normalize) }
        }
    }

    public func summary(period: Duration, now: Timestamp, top: Int) -> StatsSummary {
        self.book.withLock { $0.summary(period: period, now: now, top: top) }
    }

    public func timeline(minutes: Int, now: Timestamp) -> [MinutePoint] {
        self.book.withLock { $0.timeline(minutes: minutes, now: now) }
    }
}
