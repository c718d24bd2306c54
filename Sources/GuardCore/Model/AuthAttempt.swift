// AuthAttempt: what every evidence source (proxy, policy servers, log watcher) hands the
// engine. It never carries a password: sources turn the password into CredentialEvidence
// (a keyed, truncated hash and a "default credential" flag) and drop it.

/// The SASL mechanism of an attempt.
public enum AuthMechanism: String, Sendable, Hashable, CaseIterable {
    case plain = "PLAIN"
    case login = "LOGIN"
    case cramMD5 = "CRAM-MD5"
    case other = "OTHER"

    public init(name: some StringProtocol) {
        self = AuthMechanism(rawValue: name.uppercased()) ?? .other
    }
}

/// What is known of an attempt's result when it is handed to the engine.
public enum AuthOutcome: String, Sendable, Hashable {
    /// Not yet tried: the source asks whether to let the attempt reach the backend.
    case pending
    case success
    case failure
    /// The backend could not decide (454): neither a guess nor a login.
    case tempFailure = "temp_failure"
    /// Allowed, but the exchange ended before the credentials reached the backend (the
    /// client went away in the tarpit, the backend died first): nothing was checked.
    case abandoned
    /// The credentials reached the backend but no verdict came back: it answered 4xx (454)
    /// after them, or the connection ended before its answer. The password may well have been
    /// checked (Dovecot under its auth penalty checks it, and Postfix still answers 454), so
    /// it counts against the client's and the pair's guess budget, but not against the
    /// username and not as a failure in the reports.
    case unverified
}

/// Which evidence source saw the attempt.
public enum AttemptSource: String, Sendable, Hashable {
    case proxy
    case dovecotPolicy = "dovecot_policy"
    case postfixPolicy = "postfix_policy"
    case logWatch = "log_watch"
    /// Windows Security events (.evtx, Event XML, forwarded JSON): `replay` and `watch`.
    case windows
    case admin
}

/// What a source may say about the password without handing it over.
public struct CredentialEvidence: Sendable, Hashable {
    /// Keyed, truncated hash of (username, password): equal for one password retried.
    public var passwordHash: UInt16?
    /// The password is on the built-in default list or derived from the username.
    public var isDefaultPassword: Bool

    public init(passwordHash: UInt16? = nil, isDefaultPassword: Bool = false) {
        self.passwordHash = passwordHash
        self.isDefaultPassword = isDefaultPassword
    }

    public static let unknown = CredentialEvidence()
}

/// One SMTP AUTH attempt, as any source saw it.
public struct AuthAttempt: Sendable, Hashable {
    public var time: Timestamp
    public var client: IPAddress
    public var clientPort: UInt16?
    /// The username as the client sent it (normalised by the engine, escaped by loggers).
    public var username: String
    public var mechanism: AuthMechanism
    public var tls: Bool
    /// The TLS protocol version of the client connection ("TLSv1.3"), when known.
    public var tlsVersion: String?
    public var outcome: AuthOutcome
    public var source: AttemptSource
    public var credential: CredentialEvidence

    public init(
        time: Timestamp, client: IPAddress, clientPort: UInt16? = nil, username: String,
        mechanism: AuthMechanism = .plain, tls: Bool = false, tlsVersion: String? = nil, outcome: AuthOutcome,
        source: AttemptSource = .proxy, credential: CredentialEvidence = .unknown
    ) {
        self.time = time
        self.client = client
        self.clientPort = clientPort
        self.username = username
        self.mechanism = mechanism
        self.tls = tls
        self.tlsVersion = tlsVersion
        self.outcome = outcome
        self.source = source
        self.credential = credential
    }
}
