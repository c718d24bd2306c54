// ConnectionAdmission: whether a client that has just connected gets a session, decided
// before any byte of SMTP and before any backend connection: the connection limits, a ban
// in force for its address (or prefix), and whether it may use AUTH at all. Pure: the
// handler asks the connection registry and the engine and carries the answer out.

import GuardCore

public struct ConnectionAdmission: Sendable {
    /// What the connection registry answered for this client.
    public enum Capacity: Equatable, Sendable {
        case available
        /// The guard holds `smtp.max_connections` already.
        case full(limit: Int)
        /// This client (IPv6: its prefix) holds `smtp.max_connections_per_client` already.
        case clientFull(limit: Int)
    }

    /// Who connected: the socket's peer, or the client a trusted load balancer's PROXY
    /// header named.
    public struct Candidate: Sendable, Equatable {
        public var address: IPAddress
        public var port: UInt16
        public var localAddress: IPAddress
        public var localPort: UInt16
        /// A PROXY LOCAL connection of the load balancer's own (a health check): it gets no
        /// AUTH, so failures there can never ban the balancer.
        public var balancerItself: Bool
        /// The client came to an implicit TLS listener.
        public var implicitTLS: Bool

        public init(address: IPAddress, port: UInt16, localAddress: IPAddress, localPort: UInt16, balancerItself: Bool = false, implicitTLS: Bool = false) {
            self.address = address
            self.port = port
            self.localAddress = localAddress
            self.localPort = localPort
            self.balancerItself = balancerItself
            self.implicitTLS = implicitTLS
        }
    }

    public struct Refusal: Sendable, Equatable {
        /// What the client is told before the close; nil: nothing (an implicit TLS client,
        /// which would need a handshake first: none is spent on a client refused anyway).
        public var reply: SMTPReply?
        public var level: SessionLogLevel
        public var message: String
        public var metadata: [String: String]
    }

    public enum Verdict: Sendable, Equatable {
        case admit(ClientInfo)
        case refuse(Refusal)
    }

    private let authNetworks: NetworkList
    private let banReplyCode: Int
    private let replies: SessionReplies

    public init(configuration: ProxyConfiguration, replies: SessionReplies) {
        self.authNetworks = configuration.authNetworks
        self.banReplyCode = configuration.banReplyCode
        self.replies = replies
    }

    /// `ban` is asked only when there is room for the client.
    public func decide(_ candidate: Candidate, capacity: Capacity, ban: () -> Ban?) -> Verdict {
        switch capacity {
        case .full(let limit):
            return self.refuse(candidate, self.replies.tooManyConnections, .warning, "connection limit reached (\(limit) open): client refused")
        case .clientFull(let limit):
            return self.refuse(candidate, self.replies.tooManyConnectionsFromClient, .info, "too many connections from this client (\(limit)): refused")
        case .available:
            break
        }
        if let ban = ban() {
            let reply = self.banReplyCode == 421 ? self.replies.bannedTemporary : self.replies.bannedPermanent
            return self.refuse(
                candidate, reply, .info, "banned client refused at connect",
                metadata: ["guard.ban.scope": ban.key.scope.rawValue, "guard.ban.until": ban.until.iso8601])
        }
        return .admit(
            ClientInfo(
                address: candidate.address, port: candidate.port, localAddress: candidate.localAddress, localPort: candidate.localPort,
                authAllowed: !candidate.balancerItself && self.authNetworks.contains(candidate.address), implicitTLS: candidate.implicitTLS))
    }

    private func refuse(
        _ candidate: Candidate, _ reply: SMTPReply, _ level: SessionLogLevel, _ message: String, metadata: [String: String] = [:]
    ) -> Verdict {
        .refuse(Refusal(reply: candidate.implicitTLS ? nil : reply, level: level, message: message, metadata: metadata))
    }
}
