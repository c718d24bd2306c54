// The operator's side: the admin API (REST, /metrics, the dashboard) and where alerts go.

/// The admin server (`admin.*`).
public struct AdminConfiguration: Sendable, Equatable {
    /// HOST:PORT of the admin API, /metrics and the dashboard; empty: off.
    public var listen = "127.0.0.1:8025"
    /// The bearer token every request needs; empty: read from `tokenFile` (created on first run).
    public var token = ""
    /// File of the token; empty: `smtpguard-admin.token` beside `state.path`, or, when the
    /// state is not a file (PostgreSQL, memory only), in systemd's state directory
    /// (`$STATE_DIRECTORY`) or else the working folder.
    public var tokenFile = ""
    /// The largest request body (JSON) accepted.
    public var maxBodySize = 65_536
    /// Recent events kept in memory for `GET /api/events` and the dashboard's feed.
    public var eventBuffer = 10_000

    public init() {}

    public static let tokenFileName = "smtpguard-admin.token"

    /// The token file in use, given where the state is kept (`statePath` empty: not in a
    /// file) and systemd's `$STATE_DIRECTORY` (its first entry).
    public func effectiveTokenFile(statePath: String, stateDirectory: String? = nil) -> String {
        if !self.tokenFile.isEmpty { return self.tokenFile }
        if statePath.isEmpty {
            guard let directory = stateDirectory?.split(separator: ":").first, !directory.isEmpty else { return Self.tokenFileName }
            return directory.hasSuffix("/") ? directory + Self.tokenFileName : directory + "/" + Self.tokenFileName
        }
        guard let slash = statePath.lastIndex(of: "/") else { return Self.tokenFileName }
        return String(statePath[...slash]) + Self.tokenFileName
    }
}

/// Where alerts go besides the log and the event log (`alerts.*`).
public struct AlertsConfiguration: Sendable, Equatable {
    /// Send alerts to the system log (facility mail) through `syslogSocket`.
    public var syslog = false
    public var syslogSocket = "/dev/log"
    /// URLs that get each alert as a signed JSON POST.
    public var webhooks: [String] = []
    /// The HMAC-SHA256 key webhook receivers check the signature with. A secret.
    public var webhookSecret = ""
    public var webhookTimeout: Duration = .seconds(5)
    /// Further tries after a failed delivery, waiting 1 s, 2 s, 4 s … (at most a minute) between.
    public var webhookRetries = 5
    /// The first alert of a kind goes out at once; more of that kind within this interval are
    /// folded into one digest sent when it ends. Zero sends each alert on its own.
    public var digestInterval: Duration = .seconds(900)

    public init() {}
}
