// What one proxied session needs to know, taken once from the configuration.

import GuardCore

public struct SessionConfiguration: Sendable {
    public var hostname: String
    public var banner: String
    public var failureReply: SMTPReply
    public var tempFailureReply: SMTPReply
    public var mechanisms: [AuthMechanism]
    public var identity: IdentityForwarding
    public var maxCommandLine: Int
    public var maxAuthLine: Int
    public var maxDataLine: Int
    public var maxErrors: Int
    public var connectTimeout: Duration
    public var replyTimeout: Duration
    public var dataTimeout: Duration
    public var commandTimeout: Duration
    public var hasher: PasswordHasher

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
    public var address: IPAddress
    public var port: UInt16
    public var localAddress: IPAddress
    public var localPort: UInt16
    /// The client is inside the AUTH networks.
    public var authAllowed: Bool
    public var tls: Bool

    public init(address: IPAddress, port: UInt16, localAddress: IPAddress, localPort: UInt16, authAllowed: Bool, tls: Bool = false) {
        self.address = address
        self.port = port
        self.localAddress = localAddress
        self.localPort = localPort
        self.authAllowed = authAllowed
        self.tls = tls
    }
}
