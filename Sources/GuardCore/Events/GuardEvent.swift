// The events the guard publishes, one JSON object per line: every AUTH attempt, every ban,
// unban and alert. No event carries a password or an AUTH payload; every client-supplied
// string is escaped by the JSON writer.

/// Receives events. Implementations must not block for long: they are called on the hot path.
public protocol EventSink: Sendable {
    func record(_ event: GuardEvent)
}

/// Hands every event to several sinks, in order.
public struct FanOutEventSink: EventSink {
    public let sinks: [any EventSink]
    public init(_ sinks: [any EventSink]) { self.sinks = sinks }
    public func record(_ event: GuardEvent) {
        for sink in self.sinks { sink.record(event) }
    }
}

public struct DiscardingEventSink: EventSink {
    public init() {}
    public func record(_ event: GuardEvent) {}
}

/// One AUTH attempt as a source saw it, with the decision taken.
public struct AttemptRecord: Sendable, Hashable {
    public var attempt: AuthAttempt
    public var session: String
    /// The reply code the client was given (0 when none, e.g. the client went away).
    public var replyCode: Int
    public var decision: Decision

    public init(attempt: AuthAttempt, session: String, replyCode: Int, decision: Decision) {
        self.attempt = attempt
        self.session = session
        self.replyCode = replyCode
        self.decision = decision
    }
}

/// A sending request the guard refused (a limit, a locked account).
public struct SendingRecord: Sendable, Hashable {
    public var request: SendingRequest
    public var decision: SendingDecision

    public init(request: SendingRequest, decision: SendingDecision) {
        self.request = request
        self.decision = decision
    }
}

public enum GuardEvent: Sendable, Hashable {
    case attempt(AttemptRecord)
    case ban(Ban)
    case unban(Ban, time: Timestamp, lifted: Bool)
    case alert(Alert)
    case sending(SendingRecord)

    /// The event as one line of JSON, without the newline.
    public var jsonLine: String {
        var json = JSONObjectWriter()
        switch self {
        case .attempt(let record):
            let attempt = record.attempt
            json.string("time", attempt.time.iso8601)
            json.string("event", "auth")
            json.string("source", attempt.source.rawValue)
            if !record.session.isEmpty { json.string("session", record.session) }
            json.string("client_ip", attempt.client.description)
            if let port = attempt.clientPort { json.int("client_port", Int(port)) }
            json.bool("tls", attempt.tls)
            if let version = attempt.tlsVersion { json.string("tls_version", version) }
            json.string("mechanism", attempt.mechanism.rawValue)
            json.string("username", attempt.username)
            json.string("outcome", attempt.outcome.rawValue)
            if record.replyCode != 0 { json.int("reply", record.replyCode) }
            json.string("decision", record.decision.verdict.rawValue)
            json.strings("reasons", record.decision.reasons.map(\.rawValue))
            json.int("delay_ms", Int(record.decision.delay.nanosecondsClamped / 1_000_000))
            if attempt.credential.isDefaultPassword { json.bool("default_credential", true) }
        case .ban(let ban):
            json.string("time", ban.since.iso8601)
            json.string("event", "ban")
            Self.write(ban, into: &json)
        case .unban(let ban, let time, let lifted):
            json.string("time", time.iso8601)
            json.string("event", "unban")
            Self.write(ban, into: &json)
            json.string("why", lifted ? "lifted" : "expired")
        case .alert(let alert):
            json.string("time", alert.time.iso8601)
            json.string("event", "alert")
            alert.writeFields(into: &json)
        case .sending(let record):
            let request = record.request
            json.string("time", request.time.iso8601)
            json.string("event", "sending")
            json.string("source", request.source.rawValue)
            json.string("username", request.username)
            if let client = request.client { json.string("client_ip", client.description) }
            json.string("counts", request.counts.rawValue)
            json.int("amount", request.amount)
            json.string("decision", record.decision.allowed ? "allow" : "refuse")
            if let excess = record.decision.excess {
                json.string("limit", excess.limitText)
                json.int("sent", excess.sent)
                json.int("addresses", excess.addresses)
            }
            if let lock = record.decision.lock { json.string("locked_until", lock.until.iso8601) }
        }
        return json.finish()
    }

    private static func write(_ ban: Ban, into json: inout JSONObjectWriter) {
        ban.writeFields(into: &json)
    }
}

extension Ban {
    /// The ban's own fields (scope, key, reason, since, until, duration_s, offense), as the
    /// event log and the admin API write them.
    public func writeFields(into json: inout JSONObjectWriter) {
        json.string("scope", self.key.scope.rawValue)
        json.string("key", self.key.description)
        json.string("reason", self.reason.rawValue)
        json.string("since", self.since.iso8601)
        json.string("until", self.until.iso8601)
        json.int("duration_s", Int(self.duration.wholeSeconds))
        json.int("offense", self.offense)
    }
}

extension Alert {
    /// The alert's own fields (kind, severity, username, client_ip, message).
    public func writeFields(into json: inout JSONObjectWriter) {
        json.string("kind", self.kind.rawValue)
        json.string("severity", self.severity.rawValue)
        json.string("username", self.username)
        if let client = self.client { json.string("client_ip", client.description) }
        json.string("message", self.message)
    }
}

extension String {
    /// The text made safe for a log line: JSON escaping without the quotes, at most 256
    /// characters, so a client-supplied string can never split or forge a line.
    public var logSafe: String {
        var out = ""
        JSONObjectWriter.appendQuoted(String(self.unicodeScalars.prefix(256)), to: &out)
        return String(out.dropFirst().dropLast())
    }
}

/// Writes one flat JSON object; strings are escaped so that any byte a client sent is safe.
public struct JSONObjectWriter {
    private var out = "{"
    private var first = true

    public init() {}

    private mutating func key(_ name: String) {
        if !self.first { self.out += "," }
        self.first = false
        self.out += "\""
        self.out += name
        self.out += "\":"
    }

    public mutating func string(_ name: String, _ value: String) {
        self.key(name)
        Self.appendQuoted(value, to: &self.out)
    }

    public mutating func int(_ name: String, _ value: Int) {
        self.key(name)
        self.out += String(value)
    }

    public mutating func bool(_ name: String, _ value: Bool) {
        self.key(name)
        self.out += value ? "true" : "false"
    }

    public mutating func strings(_ name: String, _ values: [String]) {
        self.key(name)
        self.out += "["
        for (i, value) in values.enumerated() {
            if i > 0 { self.out += "," }
            Self.appendQuoted(value, to: &self.out)
        }
        self.out += "]"
    }

    /// A value that is already JSON (an object or array another writer made).
    public mutating func raw(_ name: String, _ json: String) {
        self.key(name)
        self.out += json
    }

    public mutating func finish() -> String {
        self.out += "}"
        return self.out
    }

    /// JSON string escaping; control characters, DEL and the Unicode line separators are
    /// written as \\u escapes so a log line can never be split or forged.
    public static func appendQuoted(_ value: String, to out: inout String) {
        out += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || scalar.value == 0x2028 || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
