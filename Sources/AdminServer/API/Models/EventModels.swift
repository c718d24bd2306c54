// Events on the admin API (`GET /api/events`): each is one line of the event log (README,
// "Events"), with its feed id. The server reads the line the event log writes, so the two
// never differ in a value; a test holds that no field of any kind is left out. The live
// stream (server-sent events) sends the lines themselves. Plain values, no I/O.

import Foundation
import Hummingbird

/// One event: the fields every kind has, then those of its kind (nil where it has none).
public struct EventRecord: ResponseEncodable, Decodable, Sendable, Equatable {
    /// The feed's sequence number (`after=` and `Last-Event-ID` take it).
    public var id: Int?
    /// RFC 3339, UTC, milliseconds.
    public var time: String
    /// `auth`, `ban`, `unban`, `alert` or `sending`.
    public var event: String

    // auth and sending
    public var source: String?
    public var session: String?
    public var clientIP: String?
    public var clientPort: Int?
    public var tls: Bool?
    public var tlsVersion: String?
    public var mechanism: String?
    public var username: String?
    public var outcome: String?
    public var reply: Int?
    public var decision: String?
    public var reasons: [String]?
    public var delayMilliseconds: Int?
    public var defaultCredential: Bool?

    // ban and unban
    public var scope: String?
    public var key: String?
    public var reason: String?
    public var since: String?
    public var until: String?
    public var durationSeconds: Int?
    public var offense: Int?
    public var why: String?

    // alert
    public var kind: String?
    public var severity: String?
    public var message: String?

    // sending
    public var counts: String?
    public var amount: Int?
    public var limit: String?
    public var sent: Int?
    public var addresses: Int?
    public var lockedUntil: String?

    enum CodingKeys: String, CodingKey {
        case id, time, event, source, session, tls, mechanism, username, outcome, reply, decision, reasons
        case clientIP = "client_ip"
        case clientPort = "client_port"
        case tlsVersion = "tls_version"
        case delayMilliseconds = "delay_ms"
        case defaultCredential = "default_credential"
        case scope, key, reason, since, until, offense, why
        case durationSeconds = "duration_s"
        case kind, severity, message
        case counts, amount, limit, sent, addresses
        case lockedUntil = "locked_until"
    }

    /// One line of the event log (`GuardEvent.jsonLine`), with `id` added.
    public init(line: String, id: Int?) throws {
        self = try JSONDecoder().decode(EventRecord.self, from: Data(line.utf8))
        if let id { self.id = id }
    }
}

/// Kept events that passed the filter, oldest first.
public struct EventList: ResponseEncodable, Decodable, Sendable, Equatable {
    /// The id the next event will have (`after=` it to read only newer ones).
    public var nextID: Int
    public var events: [EventRecord]

    public init(nextID: Int, events: [EventRecord]) {
        self.nextID = nextID
        self.events = events
    }

    enum CodingKeys: String, CodingKey {
        case nextID = "next_id"
        case events
    }
}
