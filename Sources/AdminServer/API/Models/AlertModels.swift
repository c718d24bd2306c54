// `GET /api/alerts`: the alerts raised, newest first. Plain values, no I/O.

import GuardCore
import Hummingbird

public struct AlertRecord: Codable, Sendable, Equatable {
    /// RFC 3339, UTC, milliseconds.
    public var time: String
    public var kind: String
    /// `warning` or `critical`.
    public var severity: String
    public var username: String
    /// Absent when the alert is about no one address (a distributed attack).
    public var clientIP: String?
    public var message: String

    enum CodingKeys: String, CodingKey {
        case time, kind, severity, username, message
        case clientIP = "client_ip"
    }

    public init(_ alert: Alert) {
        self.time = alert.time.iso8601
        self.kind = alert.kind.rawValue
        self.severity = alert.severity.rawValue
        self.username = alert.username
        self.clientIP = alert.client?.description
        self.message = alert.message
    }
}

public struct AlertList: ResponseEncodable, Decodable, Sendable, Equatable {
    public var alerts: [AlertRecord]

    public init(alerts: [AlertRecord]) { self.alerts = alerts }
}
