// Dovecot's auth policy, decided by the guard. Dovecot asks `allow` before it checks a
// password and (with auth_policy_check_after_auth, the default) again after a password
// proved right, then sends a `report` with the outcome. The answer is a status: -1 rejects,
// 0 allows, N > 0 makes Dovecot wait N seconds first (the guard's tarpit).
//
// The request carries no password, only `pwhash`: the top bits of
// SHA-256(nonce ‖ login ‖ NUL ‖ password). With the nonce the guard can tell a retried
// password from a new guess, and recognise the default passwords bots try.

import GuardCore
import Synchronization

/// One request body, checked.
public struct DovecotPolicyRequest: Sendable, Equatable {
    public var login: String
    public var remote: IPAddress
    /// The truncated hash as Dovecot sent it (bytes), if any.
    public var passwordHash: [UInt8]?
    public var protocolName: String
    public var sessionID: String
    public var deviceID: String
    public var tls: Bool
    /// Report only: the authentication succeeded.
    public var success: Bool?
    /// Report only: the policy server (this guard) rejected it.
    public var policyReject: Bool

    /// Reads the JSON body; unknown attributes are ignored, a known one of the wrong type
    /// is an error that names it.
    public static func parse(_ body: [UInt8], report: Bool) throws(DovecotPolicyError) -> DovecotPolicyRequest {
        var login = "", remoteText: String?, hashText = "", protocolName = "", sessionID = "", deviceID = ""
        var tls: Bool?, success: Bool?, policyReject: Bool?
        func string(_ name: String, _ value: FlatJSON.Raw) throws(DovecotPolicyError) -> String? {
            switch value {
            case .string(let range, let escaped):
                do {
                    return try FlatJSON.text(body, range, escaped: escaped)
                } catch {
                    throw DovecotPolicyError("body is not a JSON object: \(error)")
                }
            case .null: return nil
            default: throw DovecotPolicyError("\"\(name)\" must be a string, not \(value.typeName)")
            }
        }
        func bool(_ name: String, _ value: FlatJSON.Raw) throws(DovecotPolicyError) -> Bool? {
            switch value {
            case .bool(let flag): return flag
            case .null: return nil
            // Dovecot's own attributes arrive as strings when set in auth_policy_request_attributes.
            case .string:
                switch try string(name, value) {
                case "true", "yes", "1": return true
                case "false", "no", "0", "": return false
                default: throw DovecotPolicyError("\"\(name)\" must be true or false")
                }
            default: throw DovecotPolicyError("\"\(name)\" must be true or false, not \(value.typeName)")
            }
        }
        let members: [(name: Range<Int>, value: FlatJSON.Raw)]
        do {
            members = try FlatJSON.members(body)
        } catch {
            throw DovecotPolicyError("body is not a JSON object: \(error)")
        }
        for (range, value) in members {
            let name = body[range]
            switch name.count {
            case 3 where name.elementsEqual("tls".utf8): tls = try bool("tls", value)
            case 5 where name.elementsEqual("login".utf8): login = try string("login", value) ?? ""
            case 6 where name.elementsEqual("remote".utf8): remoteText = try string("remote", value)
            case 6 where name.elementsEqual("pwhash".utf8): hashText = try string("pwhash", value) ?? ""
            case 7 where name.elementsEqual("success".utf8): success = try bool("success", value)
            case 8 where name.elementsEqual("protocol".utf8): protocolName = try string("protocol", value) ?? ""
            case 9 where name.elementsEqual("device_id".utf8): deviceID = try string("device_id", value) ?? ""
            case 10 where name.elementsEqual("session_id".utf8): sessionID = try string("session_id", value) ?? ""
            case 13 where name.elementsEqual("policy_reject".utf8): policyReject = try bool("policy_reject", value)
            default: break
            }
        }
        guard let remoteText else { throw DovecotPolicyError("\"remote\" is missing") }
        guard let remote = IPAddress(remoteText) else { throw DovecotPolicyError("\"remote\" is not an IP address") }
        var passwordHash: [UInt8]?
        if !hashText.isEmpty {
            guard let bytes = Hex.bytes(hashText) else { throw DovecotPolicyError("\"pwhash\" is not hexadecimal") }
            passwordHash = bytes
        }
        if report && success == nil { throw DovecotPolicyError("a report needs \"success\"") }
        return DovecotPolicyRequest(
            login: login, remote: remote, passwordHash: passwordHash, protocolName: protocolName, sessionID: sessionID, deviceID: deviceID,
            tls: tls ?? false, success: report ? success : nil, policyReject: policyReject ?? false)
    }
}

public struct DovecotPolicyError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { self.message }
}

/// What the endpoint answers: `{"status": N, "msg": "…"}`.
public struct DovecotPolicyAnswer: Sendable, Equatable {
    public var status: Int
    public var message: String

    public init(status: Int, message: String) {
        self.status = status
        self.message = message
    }

    public static let allow = DovecotPolicyAnswer(status: 0, message: "")

    public var json: String {
        var json = JSONObjectWriter()
        json.int("status", self.status)
        json.string("msg", self.message)
        return json.finish()
    }
}

/// Decides Dovecot's requests with the guard, and records them as events.
public final class DovecotPolicy: Sendable {
    public let guardEngine: Guard
    let events: any EventSink
    let hasher: DovecotPasswordHash?
    /// Allows answered and not yet reported, keyed by what identifies one authentication.
    private let inFlight = Mutex<[FlightKey: Flight]>([:])
    /// Default-password hashes per login (computing them costs ~30 SHA-256).
    private let defaults = Mutex<[String: Set<[UInt8]>]>([:])
    /// An allow not reported within this time is forgotten.
    static let flightLifetime: Duration = .seconds(60)
    static let maxFlights = 100_000
    static let maxCachedLogins = 20_000

    struct FlightKey: Hashable {
        var session: String
        var remote: IPAddress
        var login: String
        var hash: [UInt8]?
    }

    struct Flight {
        var started: Timestamp
        /// The after-authentication check already told the engine the outcome.
        var settled: Bool
    }

    public init(guardEngine: Guard, events: any EventSink, configuration: DovecotPolicyConfiguration) {
        self.guardEngine = guardEngine
        self.events = events
        self.hasher = configuration.hashNonce.isEmpty ? nil : DovecotPasswordHash(nonce: configuration.hashNonce, bits: configuration.hashTruncate)
    }

    /// With few bits a wrong password matches one of ~30 default hashes now and then (1 in
    /// 140 at 12 bits): enough to weigh a failure, not to refuse a good login. From 32 bits
    /// on a match is taken as the default password it is.
    var trustsDefaultMatch: Bool { (self.hasher?.bits ?? 0) == 0 || (self.hasher?.bits ?? 0) >= 32 }

    /// `command=allow`.
    public func allow(_ request: DovecotPolicyRequest) -> DovecotPolicyAnswer {
        let now = self.guardEngine.clock.now()
        let key = FlightKey(session: request.sessionID, remote: request.remote, login: request.login, hash: request.passwordHash)
        let isDefault = self.isDefaultPassword(request)
        // A second allow for the same authentication comes after the password proved right.
        let afterAuth = self.inFlight.withLock { flights -> Bool in
            guard var flight = flights[key], now - flight.started < Self.flightLifetime, !flight.settled else { return false }
            flight.settled = true
            flights[key] = flight
            return true
        }
        if afterAuth {
            var attempt = self.attempt(request, outcome: .success, time: now)
            attempt.credential.isDefaultPassword = isDefault && self.trustsDefaultMatch
            let decision = self.guardEngine.decide(attempt)
            self.record(attempt, decision: decision)
            if decision.verdict == .allow { return .allow }
            return DovecotPolicyAnswer(status: -1, message: "Authentication failed")
        }
        var attempt = self.attempt(request, outcome: .pending, time: now)
        attempt.credential.isDefaultPassword = isDefault
        let decision = self.guardEngine.decide(attempt)
        switch decision.verdict {
        case .allow:
            self.inFlight.withLock { flights in
                if flights.count >= Self.maxFlights { flights = flights.filter { now - $0.value.started < Self.flightLifetime } }
                if flights.count < Self.maxFlights { flights[key] = Flight(started: now, settled: false) }
            }
            guard decision.delay > .zero else { return .allow }
            // Dovecot counts whole seconds.
            let seconds = Int((decision.delay.nanosecondsClamped + 999_999_999) / 1_000_000_000)
            return DovecotPolicyAnswer(status: seconds, message: "")
        case .refuse, .tempFail:
            // Counted as a failure by the engine already; the report will say policy_reject.
            attempt.outcome = .failure
            self.record(attempt, decision: decision)
            return DovecotPolicyAnswer(status: -1, message: "Authentication failed")
        }
    }

    /// `command=report`: the outcome of an authentication the guard allowed.
    public func report(_ request: DovecotPolicyRequest) -> DovecotPolicyAnswer {
        let now = self.guardEngine.clock.now()
        let key = FlightKey(session: request.sessionID, remote: request.remote, login: request.login, hash: request.passwordHash)
        let flight = self.inFlight.withLock { $0.removeValue(forKey: key) }
        // The guard's own rejection was counted when it was made; a settled flight was
        // counted at the after-authentication check.
        if request.policyReject || flight?.settled == true { return .allow }
        var attempt = self.attempt(request, outcome: request.success == true ? .success : .failure, time: now)
        attempt.credential.isDefaultPassword = self.isDefaultPassword(request) && (request.success != true || self.trustsDefaultMatch)
        let decision = self.guardEngine.decide(attempt)
        self.record(attempt, decision: decision)
        return .allow
    }

    private func attempt(_ request: DovecotPolicyRequest, outcome: AuthOutcome, time: Timestamp) -> AuthAttempt {
        var evidence = CredentialEvidence.unknown
        if let hash = request.passwordHash, !hash.isEmpty {
            // Any fixed reduction tells a retried password from a new one.
            let last = hash.count >= 2 ? UInt16(hash[hash.count - 2]) << 8 | UInt16(hash[hash.count - 1]) : UInt16(hash[0])
            evidence.passwordHash = last
        }
        return AuthAttempt(
            time: time, client: request.remote, username: request.login, mechanism: .other, tls: request.tls, outcome: outcome,
            source: .dovecotPolicy, credential: evidence)
    }

    private func isDefaultPassword(_ request: DovecotPolicyRequest) -> Bool {
        guard let hasher = self.hasher, let hash = request.passwordHash else { return false }
        let login = request.login
        if let known = self.defaults.withLock({ $0[login] }) { return known.contains(hash) }
        let hashes = hasher.defaultHashes(login: login)
        self.defaults.withLock { cache in
            if cache.count >= Self.maxCachedLogins { cache.removeAll(keepingCapacity: true) }
            cache[login] = hashes
        }
        return hashes.contains(hash)
    }

    private func record(_ attempt: AuthAttempt, decision: Decision) {
        let reply: Int
        switch attempt.outcome {
        case .success where decision.verdict == .allow: reply = 235
        case .success, .failure: reply = 535
        default: reply = 0
        }
        self.events.record(.attempt(AttemptRecord(attempt: attempt, session: "", replyCode: reply, decision: decision)))
    }
}
