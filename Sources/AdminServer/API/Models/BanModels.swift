// Bans on the admin API: `GET /api/bans`, `POST /api/bans`, `DELETE /api/bans/{scope}/{key}`.
// Plain values, no I/O; the server makes them from the engine's bans, the command line reads
// them back.

import GuardCore
import Hummingbird

/// A ban or lock in force.
public struct BanRecord: ResponseEncodable, Decodable, Sendable, Equatable {
    /// `ip`, `prefix` or `username`.
    public var scope: String
    public var key: String
    public var reason: String
    /// RFC 3339, UTC, milliseconds.
    public var since: String
    public var until: String
    public var durationSeconds: Int
    public var offense: Int
    public var remainingSeconds: Int
    public var knownPlacesExempt: Bool

    enum CodingKeys: String, CodingKey {
        case scope, key, reason, since, until, offense
        case durationSeconds = "duration_s"
        case remainingSeconds = "remaining_s"
        case knownPlacesExempt = "known_places_exempt"
    }

    public init(_ ban: Ban, now: Timestamp) {
        self.scope = ban.key.scope.rawValue
        self.key = ban.key.description
        self.reason = ban.reason.rawValue
        self.since = ban.since.iso8601
        self.until = ban.until.iso8601
        self.durationSeconds = Int(ban.duration.wholeSeconds)
        self.offense = ban.offense
        self.remainingSeconds = Int((ban.until - now).wholeSeconds)
        self.knownPlacesExempt = ban.exemptKnownPlaces
    }
}

/// One page of the bans in force, newest first.
public struct BanList: ResponseEncodable, Decodable, Sendable, Equatable {
    /// All that matched, of which `bans` is the page from `offset`.
    public var total: Int
    public var offset: Int
    public var limit: Int
    public var bans: [BanRecord]

    public init(total: Int, offset: Int, limit: Int, bans: [BanRecord]) {
        self.total = total
        self.offset = offset
        self.limit = limit
        self.bans = bans
    }
}

/// The body of `POST /api/bans`.
public struct BanRequest: Codable, Sendable {
    public var scope: String
    public var key: String
    public var duration: FlexibleDuration
    public var reason: String?

    public init(scope: String, key: String, duration: FlexibleDuration, reason: String? = nil) {
        self.scope = scope
        self.key = key
        self.duration = duration
        self.reason = reason
    }
}

/// A duration in a request body: seconds as a number, or text such as "90s", "2h", "7d".
/// Written back as it was given.
public struct FlexibleDuration: Codable, Sendable, Equatable {
    public let value: Duration
    private let text: String?

    /// Text such as "2h"; nil when it is not a duration.
    public init?(_ text: String) {
        guard let value = parseDuration(text) else { return nil }
        self.value = value
        self.text = text
    }

    public init(seconds: Int) {
        self.value = .seconds(seconds)
        self.text = nil
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let seconds = try? container.decode(Int.self) {
            self.init(seconds: seconds)
        } else if let text = try? container.decode(String.self), let duration = FlexibleDuration(text) {
            self = duration
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected seconds or a duration such as \"2h\"")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let text = self.text {
            try container.encode(text)
        } else {
            try container.encode(Int(self.value.wholeSeconds))
        }
    }
}
