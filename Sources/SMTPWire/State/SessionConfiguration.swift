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
    public let connectTimeout: Duration
    public let replyTimeout: Duration
    public let dataTimeout: Duration
    public let commandTimeout: Duration
    public let hasher: PasswordHasher

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
        self.connectTimeout = proxy.connectTimeout
        self.replyTimeout = proxy.replyTimeout
        self.dataTimeout = proxy.dataTimeout
        self.commandTimeout = proxy.commandTimeout
        self.hasher = hasher
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
    public let tls: Bool

    public init(address: IPAddress, port: UInt16, localAddress: IPAddress, localPort: UInt16, authAllowed: Bool, tls: Bool = false) {
        self.address = address
        self.port = port
        self.localAddress = localAddress
        self.localPort = localPort
        self.authAllowed = authAllowed
        self.tls = tls
    }
}
