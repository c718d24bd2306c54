// The alerts behind `GET /api/alerts`: the newest `capacity`, loaded from the state at start
// and kept as they are raised.

import GuardCore
import Synchronization

public final class AlertLog: EventSink, Sendable {
    public let capacity: Int
    private let alerts: Mutex<[Alert]>

    public init(capacity: Int = 1000) {
        self.capacity = capacity
        self.alerts = Mutex([])
    }

    /// Alerts from before this start, any order.
    public func load(_ alerts: [Alert]) {
        self.alerts.withLock { kept in
            kept = Array((kept + alerts).sorted { $0.time < $1.time }.suffix(self.capacity))
        }
    }

    public func record(_ event: GuardEvent) {
        guard case .alert(let alert) = event else { return }
        self.alerts.withLock { kept in
            kept.append(alert)
            if kept.count > self.capacity + self.capacity / 4 { kept.removeFirst(kept.count - self.capacity) }
        }
    }

    /// Newest first, at most `limit`, since `since`, of the given kinds (all when empty).
    public func alerts(since: Timestamp?, kinds: Set<String>, limit: Int) -> [Alert] {
        self.alerts.withLock { kept in
            var found: [Alert] = []
            for alert in kept.reversed() {
                if let since, alert.time < since { break }
                if !kinds.isEmpty && !kinds.contains(alert.kind.rawValue) { continue }
                found.append(alert)
                if found.count >= limit { break }
            }
            return found
        }
    }
}
