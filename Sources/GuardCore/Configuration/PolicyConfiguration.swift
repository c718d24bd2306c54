// The policy servers: Dovecot's auth policy (HTTP, before and after each authentication)
// and Postfix's SMTPD access policy delegation (bans at connect, sending limits after AUTH).

/// `dovecot_policy.*`: the HTTP endpoint Dovecot's `auth_policy_server_url` points at.
public struct DovecotPolicyConfiguration: Sendable, Equatable {
    /// HOST:PORT; empty: off.
    public var listen = ""
    /// The header Dovecot sends (`auth_policy_server_api_header`): `Name: value`, or a bare
    /// value, which Dovecot sends as `X-API-Key: value`.
    public var apiHeader = ""
    /// `user:password` Dovecot sends as HTTP basic auth (from the URL).
    public var basicAuth = ""
    /// `auth_policy_hash_nonce`: lets the guard recognise default passwords in `pwhash`.
    public var hashNonce = ""
    /// `auth_policy_hash_truncate`: bits of the hash Dovecot sends.
    public var hashTruncate = 12
    /// Largest request body taken.
    public var maxBodySize = 16_384

    public init() {}

    /// The API key header as (lower-cased name, value), or nil when none is configured.
    public var apiKey: (name: String, value: String)? {
        let text = self.apiHeader.trimmingWhitespace()
        guard !text.isEmpty else { return nil }
        if let colon = text.firstIndex(of: ":") {
            let name = String(text[..<colon]).trimmingWhitespace().lowercased()
            let value = String(text[text.index(after: colon)...]).trimmingWhitespace()
            if !name.isEmpty && !name.contains(" ") { return (name, value) }
        }
        return ("x-api-key", text)
    }
}

/// `postfix_policy.*`: the socket Postfix's `check_policy_service` points at.
public struct PostfixPolicyConfiguration: Sendable, Equatable {
    /// `HOST:PORT` or `unix:/path`; empty: off.
    public var listen: [String] = []
    /// The access(5) action for a banned client at CONNECT, EHLO, MAIL (and later).
    public var banAction = "421 4.7.0 Too many failed logins from your address; try again later"
    /// Largest request (all its lines) taken.
    public var maxRequestSize = 16_384
    /// How long a connection may stay idle between requests (Postfix keeps it 300s).
    public var idleTimeout: Duration = .seconds(330)
    /// The group a `unix:` socket is given (mode 0660: that group and the guard's user may
    /// connect, nobody else); empty: the guard's own group.
    public var socketGroup = "postfix"

    public init() {}

    /// A listen entry: a TCP address or a Unix socket path.
    public enum Endpoint: Sendable, Equatable, CustomStringConvertible {
        case tcp(HostPort)
        case unix(String)

        public init(parsing text: String) throws(ConfigValueError) {
            if text.hasPrefix("unix:") {
                let path = String(text.dropFirst(5))
                guard path.hasPrefix("/"), path.utf8.count < 100 else { throw ConfigValueError("\"\(text)\": unix: needs an absolute path under 100 bytes") }
                self = .unix(path)
            } else if let hostPort = HostPort(text) {
                self = .tcp(hostPort)
            } else {
                throw ConfigValueError("\"\(text)\": expected HOST:PORT or unix:/path/to/socket")
            }
        }

        public var description: String {
            switch self {
            case .tcp(let hostPort): return hostPort.description
            case .unix(let path): return "unix:" + path
            }
        }
    }
}

/// An access(5) action the policy server may answer with; nil when it is one.
func postfixAction(_ text: String) -> String? {
    let word = text.split(separator: " ", maxSplits: 1).first.map { String($0).uppercased() } ?? ""
    let known = ["REJECT", "DEFER", "DEFER_IF_PERMIT", "DEFER_IF_REJECT", "HOLD", "DISCARD", "DUNNO", "OK", "WARN"]
    if known.contains(word) { return nil }
    if word.count == 3, let code = Int(word), (400...599).contains(code) { return nil }
    return "must be an access(5) action: REJECT, DEFER, DEFER_IF_PERMIT … or a 4xx/5xx code with text"
}
