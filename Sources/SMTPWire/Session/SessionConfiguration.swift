// What one proxied session needs to know, taken once from the configuration.

import GuardCore

/// A class: every session of a proxy shares one, and a session machine carries only a reference.
public final class SessionConfiguration: Sendable {
    public let hostname: String
    public let banner: String
    public let failureReply: SMTPReply
    public let tempFailureReply: SMTPReply
    public let mechanisms: [AuthMechanism]
    public let identity: IdentityForwarding
    public let maxCommandLine: Int
    public let maxAuthLine: Int
    public let maxDataLine: Int
    public let maxErrors: Int
    public let maxJunkCommands: Int
    public let maxMessageSize: Int
    public let dataMinRate: Int
    public let sessionTimeout: Duration
    /// A certificate is configured: STARTTLS is offered on plain listeners.
    public let tlsAvailable: Bool
    public let requireTLS: Bool
    public let tlsHandshakeTimeout: Duration
    public let backendTLS: BackendTLSMode
    public let connectTimeout: Duration
    public let replyTimeout: Duration
    public let dataTimeout: Duration
    public let commandTimeout: Duration
    public let hasher: PasswordHasher
    /// Every reply of the guard's own, built once.
    public let replies: SessionReplies

    public init(_ proxy: ProxyConfiguration, hasher: PasswordHasher) {
        self.hostname = proxy.effectiveHostname
        self.banner = proxy.effectiveBanner
        self.failureReply = SMTPReply(configured: proxy.failureReply) ?? SMTPReply(code: 535, "5.7.8 Authentication credentials invalid")
        self.tempFailureReply = SMTPReply(configured: proxy.tempFailureReply) ?? SMTPReply(code: 454, "4.7.0 Temporary authentication failure")
        self.mechanisms = proxy.mechanisms
        self.identity = proxy.identity
        self.maxCommandLine = proxy.maxCommandLine
        self.maxAuthLine = proxy.maxAuthLine
        self.maxDataLine = proxy.maxDataLine
        self.maxErrors = proxy.maxErrors
        self.maxJunkCommands = proxy.maxJunkCommands
        self.maxMessageSize = proxy.maxMessageSize
        self.dataMinRate = proxy.dataMinRate
        self.sessionTimeout = proxy.sessionTimeout
        self.tlsAvailable = proxy.tls.isConfigured
        self.requireTLS = proxy.requireTLS
        self.tlsHandshakeTimeout = proxy.tls.handshakeTimeout
        self.backendTLS = proxy.backendTLS
        self.connectTimeout = proxy.connectTimeout
        self.replyTimeout = proxy.replyTimeout
        self.dataTimeout = proxy.dataTimeout
        self.commandTimeout = proxy.commandTimeout
        self.hasher = hasher
        self.replies = SessionReplies(
            hostname: self.hostname, banner: self.banner, failure: self.failureReply, tempFailure: self.tempFailureReply,
            maxDataLine: self.maxDataLine, maxMessageSize: self.maxMessageSize)
    }
}

/// Who is on the other end of one client connection.
public struct ClientInfo: Sendable, Equatable {
    public let address: IPAddress
    public let port: UInt16
    public let localAddress: IPAddress
    public let localPort: UInt16
    /// The client is inside the AUTH networks.
    public let authAllowed: Bool
    /// The client came to an implicit TLS listener: TLS from the first byte.
    public let implicitTLS: Bool

    public init(address: IPAddress, port: UInt16, localAddress: IPAddress, localPort: UInt16, authAllowed: Bool, implicitTLS: Bool = false) {
        self.address = address
        self.port = port
        self.localAddress = localAddress
        self.localPort = localPort
        self.authAllowed = authAllowed
        self.implicitTLS = implicitTLS
    }
}
