// Decision: what the engine answers to an AuthAttempt, and the bans and alerts it issues.

/// Why the engine decided as it did. Raw values appear in the event log and the API.
public enum Reason: String, Sendable, Hashable, CaseIterable {
    case trustedNetwork = "trusted_network"
    case knownPlace = "known_place"
    case ipBanned = "ip_banned"
    case prefixBanned = "prefix_banned"
    case usernameLocked = "username_locked"
    case deniedUsername = "denied_username"
    case defaultCredential = "default_credential"
    case repeatedPassword = "repeated_password"
    case pairLimit = "pair_limit"
    case ipFailures = "ip_failures"
    case prefixFailures = "prefix_failures"
    case usernameFailures = "username_failures"
    case spraying = "spraying"
    case distributedAttack = "distributed_attack"
    case rateLimited = "rate_limited"
    case parallelAttempts = "parallel_attempts"
    /// The client has used up its guess budget (failures and unverified guesses in the
    /// window): refused here, never sent to the backend.
    case guessBudget = "guess_budget"
    /// The backend got the credentials but gave no verdict (4xx after them, or the
    /// connection ended first): counted as a guess against the client and the pair.
    case unverifiedGuess = "unverified_guess"
    case tarpit = "tarpit"
    case weakCredentialAccepted = "weak_credential_accepted"
    case possibleCompromise = "possible_compromise"
    /// An authenticated user went past a sending limit (the lock, when configured).
    case sendingLimit = "sending_limit"
    case manual = "manual"
}

/// What a ban covers.
public enum BanScope: String, Sendable, Hashable, CaseIterable {
    case ip
    case prefix
    case username
}

/// The identity a ban applies to.
public enum BanKey: Hashable, Sendable, CustomStringConvertible {
    case ip(IPAddress)
    case prefix(IPNetwork)
    case username(String)

    public var scope: BanScope {
        switch self {
        case .ip: return .ip
        case .prefix: return .prefix
        case .username: return .username
        }
    }

    public var description: String {
        switch self {
        case .ip(let address): return address.description
        case .prefix(let network): return network.description
        case .username(let name): return name
        }
    }
}

/// A ban (or, for usernames, a lock) in force until `until`.
public struct Ban: Sendable, Hashable {
    public var key: BanKey
    public var since: Timestamp
    public var until: Timestamp
    public var reason: Reason
    /// 1 for a first ban, 2 for the second within the memory of offences, …
    public var offense: Int
    /// A username lock that known places still pass (a distributed attack), or one that
    /// holds for every untrusted client (a weak credential).
    public var exemptKnownPlaces: Bool

    public init(key: BanKey, since: Timestamp, until: Timestamp, reason: Reason, offense: Int, exemptKnownPlaces: Bool = false) {
        self.key = key
        self.since = since
        self.until = until
        self.reason = reason
        self.offense = offense
        self.exemptKnownPlaces = exemptKnownPlaces
    }

    public var duration: Duration { self.until - self.since }
}

/// Something an administrator should know now.
public struct Alert: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case weakCredentialAccepted = "weak_credential_accepted"
        case possibleCompromise = "possible_compromise"
        case distributedAttack = "distributed_attack"
        /// Failed logins across all clients over `alerts.volume_threshold` per minute.
        case attackVolume = "attack_volume"
        /// The backend slows or refuses AUTH for the guard's own address (backend.identity none).
        case backendPenalty = "backend_penalty"
        /// A log source of the watcher has read nothing for `watch.silence_alert`.
        case sourceSilent = "source_silent"
    }

    public enum Severity: String, Sendable, Hashable {
        case warning
        case critical
    }

    public var kind: Kind
    public var severity: Severity
    public var time: Timestamp
    public var username: String
    public var client: IPAddress?
    /// Plain words for people; never a password.
    public var message: String

    public init(kind: Kind, severity: Severity, time: Timestamp, username: String, client: IPAddress?, message: String) {
        self.kind = kind
        self.severity = severity
        self.time = time
        self.username = username
        self.client = client
        self.message = message
    }
}

/// The engine's answer.
public struct Decision: Sendable, Hashable {
    public enum Verdict: String, Sendable, Hashable {
        /// Let the attempt through (pending) or accept its result (reported).
        case allow
        /// Answer with the configured failure reply; for a reported success, turn it into a failure.
        case refuse
        /// Answer with the configured temporary-failure reply.
        case tempFail = "temp_fail"
    }

    public var verdict: Verdict
    /// Wait this long before acting on the verdict (the tarpit).
    public var delay: Duration
    public var reasons: [Reason]
    /// Bans and locks this decision issued.
    public var bans: [Ban]
    public var alerts: [Alert]

    public init(verdict: Verdict, delay: Duration = .zero, reasons: [Reason] = [], bans: [Ban] = [], alerts: [Alert] = []) {
        self.verdict = verdict
        self.delay = delay
        self.reasons = reasons
        self.bans = bans
        self.alerts = alerts
    }

    public static let allow = Decision(verdict: .allow)

    /// True when the decision banned the client's own address or prefix: the session should end.
    public var bansClient: Bool {
        self.bans.contains { $0.key.scope != .username }
    }
}
