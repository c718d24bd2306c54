// The configuration model: one immutable value, nested structs with documented defaults.
// It is read from YAML at the edge (the command line) through ConfigurationKeys, which
// also renders `smtpguard config defaults` and the README's reference, so the three agree.

import Foundation

/// Everything a running guard is told.
public struct GuardConfiguration: Sendable, Equatable {
    public var proxy = ProxyConfiguration()
    public var policy = GuardPolicy()
    public var events = EventsConfiguration()
    public var state = StateConfiguration()
    public var watch = WatchConfiguration()
    public var firewall = FirewallConfiguration()
    public var dovecotPolicy = DovecotPolicyConfiguration()
    public var postfixPolicy = PostfixPolicyConfiguration()
    public var admin = AdminConfiguration()
    public var alerts = AlertsConfiguration()

    public init() {}
}

/// Where bans, attempts and alerts are kept across restarts.
public struct StateConfiguration: Sendable, Equatable {
    /// The SQLite file; empty keeps state in memory only (lost on restart).
    public var path = "smtpguard.db"
    /// `postgres://user@host:port/database`: state in PostgreSQL, shared by several guards
    /// (then `path` is not used).
    public var url = ""
    /// How often queued events are written: what a crash can lose at most.
    public var flushInterval: Duration = .seconds(1)
    /// How long attempts and alerts are kept (ban history is kept as long as offences count).
    public var retention: Duration = .seconds(30 * 86_400)
    /// PostgreSQL: the longest a connect or a query may take; then the connection is closed
    /// (and opened again on the next use) and the guard goes on from memory.
    public var timeout: Duration = .seconds(10)
    public init() {}
}

/// `HOST:PORT`, with IPv6 hosts in brackets: `127.0.0.1:2525`, `[::1]:2525`.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(_ text: String) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard !hostPart.isEmpty, !portPart.isEmpty, portPart.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(portPart), (0...65535).contains(port),
            !hostPart.contains(where: { $0 == " " || $0 == "/" })
        else { return nil }
        self.host = String(hostPart)
        self.port = port
    }

    public var description: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)" }

    /// An IPv6 address (`[::]`, `[::1]`): its listener is bound IPv6-only, so that `[::]:587`
    /// beside `0.0.0.0:587` is two sockets, not a clash (Linux makes `::` dual-stack by default).
    public var isIPv6: Bool { self.host.contains(":") }
}

/// How the proxy tells the backend who the real client is.
public enum IdentityForwarding: String, Sendable, CaseIterable {
    /// The backend sees the guard's address.
    case none
    /// Postfix's XCLIENT command (the guard must be in `smtpd_authorized_xclient_hosts`).
    case xclient
    /// HAProxy PROXY protocol header, text form (Postfix `smtpd_upstream_proxy_protocol = haproxy`).
    case proxyV1 = "proxy-v1"
    /// HAProxy PROXY protocol header, binary form (Postfix 3.5+, Exim, Exchange via HAProxy).
    case proxyV2 = "proxy-v2"
}

/// How the guard talks to the backend.
public enum BackendTLSMode: String, Sendable, CaseIterable {
    /// Plain SMTP (a backend on the same host or a trusted network).
    case none
    /// The guard sends STARTTLS after the backend's greeting, before anything else.
    case starttls
    /// TLS from the first byte (a port 465 style backend).
    case tls
}

/// The lowest TLS version the guard accepts from clients.
public enum TLSMinimumVersion: String, Sendable, CaseIterable {
    case v1_2 = "1.2"
    case v1_3 = "1.3"
}

/// The guard's own certificate, for STARTTLS and implicit TLS listeners.
public struct TLSSettings: Sendable, Equatable {
    /// PEM file: the server certificate first, then its intermediates.
    public var certificate = ""
    /// PEM file: the certificate's private key.
    public var key = ""
    public var handshakeTimeout: Duration = .seconds(10)
    public var minimumVersion: TLSMinimumVersion = .v1_2

    public init() {}

    public var isConfigured: Bool { !self.certificate.isEmpty }
}

/// The SMTP proxy: where it listens, where the real mail server is, what clients see.
public struct ProxyConfiguration: Sendable, Equatable {
    /// Plain listeners (STARTTLS is offered when a certificate is configured).
    public var listen: [HostPort] = [HostPort(host: "127.0.0.1", port: 2525)]
    /// Implicit TLS listeners (RFC 8314, port 465 style).
    public var listenTLS: [HostPort] = []
    public var tls = TLSSettings()
    /// AUTH is offered and accepted only inside TLS.
    public var requireTLS = true
    public var backend = HostPort(host: "127.0.0.1", port: 25)
    public var identity: IdentityForwarding = .none
    public var backendTLS: BackendTLSMode = .none
    /// Check the backend's certificate (chain and name) when TLS is used to it.
    public var backendTLSVerify = true
    /// PEM file of the CAs trusted for the backend's certificate; empty: the system's.
    public var backendTLSCA = ""
    /// The name the backend's certificate must carry; empty: the host of backend.address.
    public var backendTLSServerName = ""
    public var connectTimeout: Duration = .seconds(10)
    /// How long the backend may take to answer a command.
    public var replyTimeout: Duration = .seconds(300)
    /// How long the backend may take to answer the end of a message (RFC 5321: 10 minutes).
    public var dataTimeout: Duration = .seconds(600)

    /// The name the guard greets with and answers EHLO with; empty means the host's name.
    public var hostname: String = ""
    /// The greeting text after `220 `; empty means `<hostname> ESMTP`.
    public var banner: String = ""
    /// Reply code for a banned client at connect: 554 (go away) or 421 (try later).
    public var banReplyCode: Int = 554
    /// The one reply every failed AUTH gets, whoever decided it.
    public var failureReply: String = "535 5.7.8 Authentication credentials invalid"
    public var tempFailureReply: String = "454 4.7.0 Temporary authentication failure"
    public var mechanisms: [AuthMechanism] = [.plain, .login, .cramMD5]
    /// Clients to whom AUTH is offered at all.
    public var authNetworks: NetworkList = .everywhere
    /// Load balancers whose connections begin with a PROXY protocol header (v1 or v2) naming
    /// the real client. None by default.
    public var haproxyTrustedNetworks = NetworkList([])
    public var maxConnections: Int = 1000
    public var maxConnectionsPerIP: Int = 20
    /// How long a client may stay silent between commands.
    public var commandTimeout: Duration = .seconds(300)
    public var maxCommandLine: Int = 512
    public var maxAuthLine: Int = 12288
    public var maxDataLine: Int = 2048
    /// Protocol errors (bad commands, over-long lines) before the client is disconnected.
    public var maxErrors: Int = 10
    /// Commands that move no mail (NOOP, RSET, VRFY, EXPN, HELP, unknown ones) before the
    /// client is disconnected (Postfix: smtpd_junk_command_limit).
    public var maxJunkCommands: Int = 100
    /// The largest message, in bytes, taken through DATA.
    public var maxMessageSize: Int = 52_428_800
    /// During DATA the client must send at least this many bytes per second, averaged over
    /// each `dataRateInterval`; 0 turns the check off.
    public var dataMinRate: Int = 128
    public static let dataRateInterval: Duration = .seconds(30)
    /// The longest a session may last, whatever it does.
    public var sessionTimeout: Duration = .seconds(3600)
    /// Event-loop threads serving connections; 0 means one per CPU core.
    public var threads: Int = 0

    public init() {}

    /// The host name to present, resolved from the system when not configured.
    public var effectiveHostname: String {
        if !self.hostname.isEmpty { return self.hostname }
        var buffer = [CChar](repeating: 0, count: 256)
        if gethostname(&buffer, buffer.count) == 0 {
            let name = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !name.isEmpty { return name }
        }
        return "localhost"
    }

    public var effectiveBanner: String { self.banner.isEmpty ? "\(self.effectiveHostname) ESMTP" : self.banner }
}

/// The engine's rules and thresholds. A limit N means: the (N+1)th failure triggers.
public struct GuardPolicy: Sendable, Equatable {
    public var trustedNetworks = NetworkList([])
    /// IPv6 clients are grouped by this prefix (a host usually owns a whole /64).
    public var ipv6ClientPrefix = 64
    public var ipv4NetworkPrefix = 24
    public var ipv6NetworkPrefix = 48
    public var shortWindow: Duration = .seconds(600)
    public var longWindow: Duration = .seconds(86_400)
    /// Entries kept per table (clients, networks, usernames, known places, offences).
    public var maxTrackedKeys = 1_000_000

    public var limits = Limits()
    public var credentials = Credentials()
    public var knownPlaceDuration: Duration = .seconds(30 * 86_400)
    public var tarpit = Tarpit()
    public var bans = Bans()
    /// A success from a client or network with this many recent failures raises an alert.
    public var compromiseAfterFailures = 5
    /// Failed logins per minute, over all clients, that raise an `attack_volume` alert (once a
    /// minute while it lasts); 0: never.
    public var alertVolumeThreshold = 300
    /// What authenticated users may send (proxy and Postfix policy).
    public var sending = SendingPolicy()

    /// The key a client address is counted under: itself, or its IPv6 prefix.
    public func clientKey(_ address: IPAddress) -> IPAddress {
        address.isIPv4 ? address : address.masked(to: self.ipv6ClientPrefix)
    }

    /// The network prefix a client address belongs to.
    public func prefixKey(_ address: IPAddress) -> IPNetwork {
        IPNetwork(address: address, prefixLength: address.isIPv4 ? self.ipv4NetworkPrefix : self.ipv6NetworkPrefix)
    }

    public struct Limits: Sendable, Equatable {
        public var ipFailuresShort = 5
        public var ipFailuresLong = 20
        public var prefixFailuresShort = 20
        public var prefixFailuresLong = 100
        /// Distinct client addresses of a prefix that must have failed (long window) before
        /// the prefix can be banned: one address alone never bans its neighbours.
        public var prefixMinClients = 3
        public var usernameFailuresShort = 10
        public var usernameFailuresLong = 40
        /// Failures of one username from one client before that pair is refused.
        public var pairFailures = 3
        /// Distinct usernames failing from one client (spraying).
        public var usernamesPerIP = 5
        /// Distinct clients failing on one username (a botnet on one account).
        public var ipsPerUsername = 10
        /// AUTH attempts of any outcome per client in the short window before 454.
        public var attemptsPerIP = 30
        public init() {}
    }

    public struct Credentials: Sendable, Equatable {
        /// How much a failure with a default credential or a denied username counts.
        public var defaultCredentialWeight = 3
        public var deniedUsernames: [String] = ["guest"]
        /// When set, a bare `user` is the same account as `user@<default domain>`.
        public var defaultDomain = ""
        /// Bits kept of the keyed password hash (Dovecot's auth_policy_hash_truncate).
        public var hashBits = 12
        public init() {}
    }

    public struct Tarpit: Sendable, Equatable {
        /// Failures from a client (short window) before its AUTH replies are delayed.
        public var afterFailures = 2
        public var initial: Duration = .seconds(1)
        public var factor: Double = 2
        public var max: Duration = .seconds(20)
        /// The least time a refusal by the guard itself takes, so that a locked account or a
        /// denied username answers no faster than a wrong password at the backend.
        public var minRefusalDelay: Duration = .seconds(2)
        public init() {}
    }

    public struct Bans: Sendable, Equatable {
        public var ip: Duration = .seconds(900)
        public var prefix: Duration = .seconds(3600)
        public var username: Duration = .seconds(1800)
        public var weakCredentialLock: Duration = .seconds(30 * 86_400)
        /// Each repeat offence multiplies the duration by this factor.
        public var factor: Double = 4
        public var max: Duration = .seconds(30 * 86_400)
        /// Random spread added to each duration, as a fraction (0.1 = ±10 %).
        public var jitter: Double = 0.1
        /// How long a past ban counts towards escalation.
        public var rememberOffenses: Duration = .seconds(30 * 86_400)
        public init() {}
    }

    public init() {}
}

/// Where the one-line-per-event JSON log goes: a file path, `-` for standard output, or
/// empty for nowhere.
public struct EventsConfiguration: Sendable, Equatable {
    public var path: String = "-"
    public init() {}
}
