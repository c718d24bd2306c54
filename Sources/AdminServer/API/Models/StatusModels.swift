// `GET /api/status`: what the guard is and how long it has run. Plain values, no I/O.

import Hummingbird

public struct StatusResponse: ResponseEncodable, Decodable, Sendable, Equatable {
    public var version: String
    /// RFC 3339, UTC, milliseconds.
    public var started: String
    public var uptimeSeconds: Int
    public var activeBans: Int
    public var eventFollowers: Int

    public init(version: String, started: String, uptimeSeconds: Int, activeBans: Int, eventFollowers: Int) {
        self.version = version
        self.started = started
        self.uptimeSeconds = uptimeSeconds
        self.activeBans = activeBans
        self.eventFollowers = eventFollowers
    }

    enum CodingKeys: String, CodingKey {
        case version, started
        case uptimeSeconds = "uptime_s"
        case activeBans = "active_bans"
        case eventFollowers = "event_followers"
    }
}

/// `{"error": "what was wrong", "code": "state_unavailable"}`: every answer other than success.
public struct ErrorBody: ResponseEncodable, Decodable, Sendable, Equatable {
    public var error: String
    /// A fixed, machine-readable name of the error, when it has one.
    public var code: String?

    public init(error: String, code: String? = nil) {
        self.error = error
        self.code = code
    }
}
