// The figures behind `GET /api/stats` and the dashboard: per minute over the last day,
// attempts, failures, refusals, bans and alerts, and the addresses, networks and usernames
// that failed most. Each minute keeps its top `keysPerMinute` of each (the Space-Saving
// count: a key that is not kept takes the place of the smallest, inheriting its count), so a
// million attacking addresses cost no more memory than ten; a figure is exact while a
// minute has fewer distinct keys than that.

import GuardCore

/// Counts per key, keeping at most `capacity` keys.
struct TopCounter<Key: Hashable> {
    let capacity: Int
    private(set) var counts: [Key: Int] = [:]

    init(capacity: Int) { self.capacity = capacity }

    mutating func add(_ key: Key, _ amount: Int = 1) {
        if let count = self.counts[key] {
            self.counts[key] = count + amount
        } else if self.counts.count < self.capacity {
            self.counts[key] = amount
        } else if let smallest = self.counts.min(by: { $0.value < $1.value }) {
            self.counts.removeValue(forKey: smallest.key)
            self.counts[key] = smallest.value + amount
        }
    }

    /// The `n` largest, largest first (ties by key text for a stable order).
    func top(_ n: Int, text: (Key) -> String) -> [(key: Key, count: Int)] {
        self.counts.sorted { $0.value != $1.value ? $0.value > $1.value : text($0.key) < text($1.key) }.prefix(n).map { ($0.key, $0.value) }
    }
}

/// One minute's figures.
struct MinuteBucket {
    var minute: Int64
    var attempts = 0
    var successes = 0
    var failures = 0
    var refused = 0
    var bans = 0
    var alerts = 0
    var ips: TopCounter<IPAddress>
    var prefixes: TopCounter<IPNetwork>
    var usernames: TopCounter<String>

    init(minute: Int64, keys: Int) {
        self.minute = minute
        self.ips = TopCounter(capacity: keys)
        self.prefixes = TopCounter(capacity: keys)
        self.usernames = TopCounter(capacity: keys)
    }
}

/// What `GET /api/stats` answers for one period.
public struct StatsSummary: Sendable, Equatable {
    public struct Top: Sendable, Equatable {
        public var key: String
        public var failures: Int
    }

    public var period: Duration
    public var attempts = 0
    public var successes = 0
    public var failures = 0
    public var refused = 0
    public var bans = 0
    public var alerts = 0
    public var topIPs: [Top] = []
    public var topPrefixes: [Top] = []
    public var topUsernames: [Top] = []
}

/// One point of the per-minute chart.
public struct MinutePoint: Sendable, Equatable {
    public var minute: Timestamp
    public var attempts: Int
    public var failures: Int
    public var refused: Int
}

public struct StatsBook {
    public static let minutesKept = 24 * 60
    let keysPerMinute: Int
    let policy: GuardPolicy
    private var buckets: [MinuteBucket?]

    public init(policy: GuardPolicy, keysPerMinute: Int = 128) {
        self.policy = policy
        self.keysPerMinute = keysPerMinute
        self.buckets = Array(repeating: nil, count: Self.minutesKept)
    }

    static func minute(of time: Timestamp) -> Int64 { time.nanoseconds / 60_000_000_000 }

    private mutating func withBucket(at time: Timestamp, _ body: (inout MinuteBucket) -> Void) {
        let minute = Self.minute(of: time)
        let index = Int(((minute % Int64(Self.minutesKept)) + Int64(Self.minutesKept)) % Int64(Self.minutesKept))
        if self.buckets[index]?.minute != minute {
            // An older minute in the slot is a day old: replaced. A newer one means this
            // event is over a day late: dropped.
            if let existing = self.buckets[index]?.minute, existing > minute { return }
            self.buckets[index] = MinuteBucket(minute: minute, keys: self.keysPerMinute)
        }
        body(&self.buckets[index]!)
    }

    /// Counts an event (attempts still pending are not counted: their outcome is).
    public mutating func record(_ event: GuardEvent, normalize: (String) -> String) {
        switch event {
        case .attempt(let record):
            let attempt = record.attempt
            guard attempt.outcome != .pending else { return }
            let refused = record.decision.verdict != .allow
            self.count(attempt, refused: refused, normalize: normalize)
        case .ban(let ban):
            self.withBucket(at: ban.since) { $0.bans += 1 }
        case .alert(let alert):
            self.withBucket(at: alert.time) { $0.alerts += 1 }
        case .unban, .sending:
            return
        }
    }

    /// Counts a settled attempt (also those reloaded from the state at start).
    public mutating func count(_ attempt: AuthAttempt, refused: Bool, normalize: (String) -> String) {
        guard attempt.outcome != .pending else { return }
        let policy = self.policy
        self.withBucket(at: attempt.time) { bucket in
            bucket.attempts += 1
            if refused { bucket.refused += 1 }
            switch attempt.outcome {
            case .success:
                bucket.successes += 1
            case .failure:
                bucket.failures += 1
                bucket.ips.add(policy.clientKey(attempt.client))
                bucket.prefixes.add(policy.prefixKey(attempt.client))
                let user = normalize(attempt.username)
                if !user.isEmpty { bucket.usernames.add(user) }
            default:
                break
            }
        }
    }

    /// The figures of the last `period` (at most a day) up to `now`, with the top `top` keys.
    public func summary(period: Duration, now: Timestamp, top: Int) -> StatsSummary {
        let last = Self.minute(of: now)
        let minutes = max(1, min(Int64(Self.minutesKept), Int64((period.wholeSeconds + 59) / 60)))
        var summary = StatsSummary(period: period)
        var ips = TopCounter<IPAddress>(capacity: .max)
        var prefixes = TopCounter<IPNetwork>(capacity: .max)
        var usernames = TopCounter<String>(capacity: .max)
        for bucket in self.buckets {
            guard let bucket, bucket.minute <= last, bucket.minute > last - minutes else { continue }
            summary.attempts += bucket.attempts
            summary.successes += bucket.successes
            summary.failures += bucket.failures
            summary.refused += bucket.refused
            summary.bans += bucket.bans
            summary.alerts += bucket.alerts
            for (key, count) in bucket.ips.counts { ips.add(key, count) }
            for (key, count) in bucket.prefixes.counts { prefixes.add(key, count) }
            for (key, count) in bucket.usernames.counts { usernames.add(key, count) }
        }
        summary.topIPs = ips.top(top, text: \.description).map { .init(key: $0.key.description, failures: $0.count) }
        summary.topPrefixes = prefixes.top(top, text: \.description).map { .init(key: $0.key.description, failures: $0.count) }
        summary.topUsernames = usernames.top(top, text: { $0 }).map { .init(key: $0.key, failures: $0.count) }
        return summary
    }

    /// Attempts and failures per minute for the last `minutes` minutes up to `now`, oldest
    /// first, a point for every minute (zero when nothing happened).
    public func timeline(minutes: Int, now: Timestamp) -> [MinutePoint] {
        let last = Self.minute(of: now)
        let count = max(1, min(Self.minutesKept, minutes))
        var byMinute: [Int64: MinuteBucket] = [:]
        for bucket in self.buckets {
            if let bucket, bucket.minute <= last, bucket.minute > last - Int64(count) { byMinute[bucket.minute] = bucket }
        }
        return (0..<Int64(count)).reversed().map { back in
            let minute = last - back
            let bucket = byMinute[minute]
            return MinutePoint(
                minute: Timestamp(nanoseconds: minute * 60_000_000_000), attempts: bucket?.attempts ?? 0, failures: bucket?.failures ?? 0,
                refused: bucket?.refused ?? 0)
        }
    }
}
