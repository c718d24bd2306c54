// `GET /api/stats`: per period, attempts and their outcomes and the top failing addresses,
// networks and usernames; the bans in force; optionally a per-minute timeline. Plain values,
// no I/O.

import GuardCore
import Hummingbird

public struct StatsResponse: ResponseEncodable, Decodable, Sendable, Equatable {
    /// RFC 3339, UTC, milliseconds.
    public var now: String
    public var periods: [StatsPeriod]
    public var activeBans: ActiveBans
    /// Only when `timeline=` asked for it; oldest minute first.
    public var timeline: [TimelinePoint]?

    public init(now: String, periods: [StatsPeriod], activeBans: ActiveBans, timeline: [TimelinePoint]?) {
        self.now = now
        self.periods = periods
        self.activeBans = activeBans
        self.timeline = timeline
    }

    enum CodingKeys: String, CodingKey {
        case now, periods, timeline
        case activeBans = "active_bans"
    }
}

public struct StatsPeriod: Codable, Sendable, Equatable {
    /// As asked: `15m`, `1h`, `24h`.
    public var period: String
    public var seconds: Int
    public var attempts: Int
    public var successes: Int
    public var failures: Int
    public var refused: Int
    public var bans: Int
    public var alerts: Int
    public var topIPs: [TopEntry]
    public var topPrefixes: [TopEntry]
    public var topUsernames: [TopEntry]

    enum CodingKeys: String, CodingKey {
        case period, seconds, attempts, successes, failures, refused, bans, alerts
        case topIPs = "top_ips"
        case topPrefixes = "top_prefixes"
        case topUsernames = "top_usernames"
    }

    public init(_ summary: StatsSummary) {
        self.period = summary.period.compactText
        self.seconds = Int(summary.period.wholeSeconds)
        self.attempts = summary.attempts
        self.successes = summary.successes
        self.failures = summary.failures
        self.refused = summary.refused
        self.bans = summary.bans
        self.alerts = summary.alerts
        self.topIPs = summary.topIPs.map(TopEntry.init)
        self.topPrefixes = summary.topPrefixes.map(TopEntry.init)
        self.topUsernames = summary.topUsernames.map(TopEntry.init)
    }
}

/// An address, network or username, and how often it failed.
public struct TopEntry: Codable, Sendable, Equatable {
    public var key: String
    public var failures: Int

    public init(key: String, failures: Int) {
        self.key = key
        self.failures = failures
    }

    init(_ top: StatsSummary.Top) { self.init(key: top.key, failures: top.failures) }
}

/// The bans in force now, per scope.
public struct ActiveBans: Codable, Sendable, Equatable {
    public var ip: Int
    public var prefix: Int
    public var username: Int
    public var total: Int

    public init(_ bans: [Ban]) {
        self.ip = bans.count { $0.key.scope == .ip }
        self.prefix = bans.count { $0.key.scope == .prefix }
        self.username = bans.count { $0.key.scope == .username }
        self.total = bans.count
    }
}

public struct TimelinePoint: Codable, Sendable, Equatable {
    /// The minute's start, RFC 3339.
    public var minute: String
    public var attempts: Int
    public var failures: Int
    public var refused: Int

    public init(_ point: MinutePoint) {
        self.minute = point.minute.iso8601
        self.attempts = point.attempts
        self.failures = point.failures
        self.refused = point.refused
    }
}
