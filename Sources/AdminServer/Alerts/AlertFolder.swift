// Folding repeated alerts into digests, so that an administrator is not mailed 21 times
// before lunch. The first alert of a kind goes out at once and opens a window of
// `alerts.digest_interval`; more alerts of that kind within the window are kept (counted, the
// first `keep` of them in full) and go out together as one digest when it closes. A window
// that closes with something in it opens the next one, so a long attack gives one digest per
// interval; an empty one closes for good. A pure state machine: time comes in as arguments.

import GuardCore

/// What goes out to syslog and the webhooks.
public enum AlertDelivery: Sendable, Equatable {
    case single(Alert)
    /// `count` alerts of `kind` between `since` and `until`; `alerts` holds the first of them.
    case digest(kind: Alert.Kind, count: Int, since: Timestamp, until: Timestamp, alerts: [Alert])

    public var kind: Alert.Kind {
        switch self {
        case .single(let alert): return alert.kind
        case .digest(let kind, _, _, _, _): return kind
        }
    }

    public var severity: Alert.Severity {
        switch self {
        case .single(let alert): return alert.severity
        case .digest(_, _, _, _, let alerts): return alerts.contains { $0.severity == .critical } ? .critical : .warning
        }
    }

    /// One line for people (syslog).
    public var summary: String {
        switch self {
        case .single(let alert):
            return "alert \(alert.kind.rawValue): \(alert.message)"
        case .digest(let kind, let count, let since, let until, let alerts):
            let shown = alerts.prefix(3).map(\.message).joined(separator: "; ")
            let more = count > 3 ? "; …" : ""
            return "alert digest \(kind.rawValue): \(count) more between \(since.iso8601) and \(until.iso8601): \(shown)\(more)"
        }
    }

    /// The JSON a webhook receives.
    public var json: String {
        var json = JSONObjectWriter()
        switch self {
        case .single(let alert):
            json.string("type", "alert")
            json.string("time", alert.time.iso8601)
            alert.writeFields(into: &json)
        case .digest(let kind, let count, let since, let until, let alerts):
            json.string("type", "digest")
            json.string("kind", kind.rawValue)
            json.string("severity", self.severity.rawValue)
            json.int("count", count)
            json.string("since", since.iso8601)
            json.string("until", until.iso8601)
            json.string("message", self.summary)
            let items = alerts.map { alert -> String in
                var item = JSONObjectWriter()
                item.string("time", alert.time.iso8601)
                alert.writeFields(into: &item)
                return item.finish()
            }
            json.raw("alerts", "[" + items.joined(separator: ",") + "]")
        }
        return json.finish()
    }
}

public struct AlertFolder {
    struct Window {
        var opened: Timestamp
        var count = 0
        var first: Timestamp?
        var kept: [Alert] = []
    }

    public let interval: Duration
    public let keep: Int
    private var windows: [Alert.Kind: Window] = [:]

    public init(interval: Duration, keep: Int = 20) {
        self.interval = interval
        self.keep = keep
    }

    /// An alert happened: what to send now.
    public mutating func receive(_ alert: Alert, now: Timestamp) -> [AlertDelivery] {
        guard self.interval > .zero else { return [.single(alert)] }
        var deliveries = self.tick(now: now)
        if var window = self.windows[alert.kind] {
            window.count += 1
            if window.first == nil { window.first = alert.time }
            if window.kept.count < self.keep { window.kept.append(alert) }
            self.windows[alert.kind] = window
        } else {
            self.windows[alert.kind] = Window(opened: now)
            deliveries.append(.single(alert))
        }
        return deliveries
    }

    /// Time passed: the digests of the windows that closed.
    public mutating func tick(now: Timestamp) -> [AlertDelivery] {
        var deliveries: [AlertDelivery] = []
        for (kind, window) in self.windows.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where now >= window.opened + self.interval {
            if window.count > 0 {
                deliveries.append(.digest(kind: kind, count: window.count, since: window.first ?? window.opened, until: now, alerts: window.kept))
                self.windows[kind] = Window(opened: now)
            } else {
                self.windows[kind] = nil
            }
        }
        return deliveries
    }

    /// Everything still folded, at once (at shutdown).
    public mutating func flush(now: Timestamp) -> [AlertDelivery] {
        var deliveries: [AlertDelivery] = []
        for (kind, window) in self.windows.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where window.count > 0 {
            deliveries.append(.digest(kind: kind, count: window.count, since: window.first ?? window.opened, until: now, alerts: window.kept))
        }
        self.windows.removeAll()
        return deliveries
    }

    /// Alerts folded and not yet sent.
    public var pending: Int { self.windows.values.reduce(0) { $0 + $1.count } }
}
