// The two policy servers as services of a ServiceGroup: each binds its listeners, serves
// until graceful shutdown, then closes them (open connections end with the event loops).

import GuardCore
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

public struct PolicyStartError: Error, CustomStringConvertible {
    public var description: String
}

/// Dovecot's auth policy over HTTP/1.1 (keep-alive).
public struct DovecotPolicyService: Service {
    let address: HostPort
    let policy: DovecotPolicy
    let configuration: DovecotPolicyConfiguration
    let group: any EventLoopGroup
    let logger: Logger
    /// Called with the bound port once listening (tests bind port 0).
    let onListening: (@Sendable (Int) -> Void)?

    public init(
        configuration: DovecotPolicyConfiguration, policy: DovecotPolicy, group: any EventLoopGroup, logger: Logger,
        onListening: (@Sendable (Int) -> Void)? = nil
    ) throws(PolicyStartError) {
        guard let address = HostPort(configuration.listen) else { throw PolicyStartError(description: "dovecot_policy.listen: expected HOST:PORT") }
        self.address = address
        self.policy = policy
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let credentials = PolicyCredentials(self.configuration)
        let latency = Metrics.Timer(label: MetricNames.policyRequest, dimensions: [("server", "dovecot")])
        let (policy, logger, maxBody) = (self.policy, self.logger, self.configuration.maxBodySize)
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: self.group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(
                            DovecotPolicyHandler(policy: policy, credentials: credentials, maxBodySize: maxBody, logger: logger, latency: latency))
                    }
                }
                .bind(listening: self.address)
        } catch {
            throw PolicyStartError(description: "dovecot_policy.listen \(self.address): cannot listen (\(error))")
        }
        let port = channel.localAddress?.port ?? self.address.port
        self.logger.info("dovecot auth policy on http://\(HostPort(host: self.address.host, port: port))/")
        self.onListening?(port)
        try? await gracefulShutdown()
        try? await channel.close()
    }
}

/// Postfix's policy delegation on TCP and Unix sockets.
public struct PostfixPolicyService: Service {
    let endpoints: [PostfixPolicyConfiguration.Endpoint]
    let configuration: PostfixPolicyConfiguration
    let answer: @Sendable (PostfixPolicyRequest) -> String
    let group: any EventLoopGroup
    let logger: Logger
    let onListening: (@Sendable ([Int]) -> Void)?

    public init(
        configuration: PostfixPolicyConfiguration, answer: @escaping @Sendable (PostfixPolicyRequest) -> String, group: any EventLoopGroup,
        logger: Logger, onListening: (@Sendable ([Int]) -> Void)? = nil
    ) throws(PolicyStartError) {
        var endpoints: [PostfixPolicyConfiguration.Endpoint] = []
        for text in configuration.listen {
            do {
                endpoints.append(try PostfixPolicyConfiguration.Endpoint(parsing: text))
            } catch {
                throw PolicyStartError(description: "postfix_policy.listen: \(error.message)")
            }
        }
        self.endpoints = endpoints
        self.configuration = configuration
        self.answer = answer
        self.group = group
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let (answer, logger, maxSize) = (self.answer, self.logger, self.configuration.maxRequestSize)
        let idle = TimeAmount.nanoseconds(self.configuration.idleTimeout.nanosecondsClamped)
        let latency = Metrics.Timer(label: MetricNames.policyRequest, dimensions: [("server", "postfix")])
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                    try channel.pipeline.syncOperations.addHandler(PostfixPolicyHandler(maxRequestSize: maxSize, logger: logger, latency: latency, answer: answer))
                }
            }
        var channels: [any Channel] = []
        var ports: [Int] = []
        for endpoint in self.endpoints {
            do {
                switch endpoint {
                case .tcp(let address):
                    let channel = try await bootstrap.bind(listening: address)
                    channels.append(channel)
                    ports.append(channel.localAddress?.port ?? address.port)
                case .unix(let path):
                    // A socket left by a previous run would make bind fail.
                    if Self.isSocket(path) { unlink(path) }
                    let channel = try await bootstrap.bind(unixDomainSocketPath: path).get()
                    channels.append(channel)
                    // Postfix's smtpd runs as another user: it is let in by the group, and
                    // no other local user may ask about bans and limits.
                    try Self.restrict(path, group: self.configuration.socketGroup)
                }
            } catch {
                for channel in channels { try? await channel.close() }
                if let error = error as? PolicyStartError { throw error }
                throw PolicyStartError(description: "postfix_policy.listen \(endpoint): cannot listen (\(error))")
            }
            self.logger.info("postfix policy on \(endpoint)")
        }
        self.onListening?(ports)
        try? await gracefulShutdown()
        for channel in channels { try? await channel.close() }
        for case .unix(let path) in self.endpoints where Self.isSocket(path) { unlink(path) }
    }

    /// Mode 0660 and the group; an unknown group or a failed change is an error that says so.
    static func restrict(_ path: String, group: String) throws {
        if !group.isEmpty {
            guard let entry = getgrnam(group) else {
                throw PolicyStartError(description: "postfix_policy.socket_group: no group named \"\(group)\" on this system (for \(path))")
            }
            guard chown(path, uid_t.max, entry.pointee.gr_gid) == 0 else {
                let reason = String(cString: strerror(errno))
                throw PolicyStartError(
                    description: "postfix_policy.socket_group: cannot give \(path) to group \(group): \(reason) (the guard's user must be a member of it)")
            }
        }
        guard chmod(path, 0o660) == 0 else {
            throw PolicyStartError(description: "postfix_policy.listen unix:\(path): cannot set mode 0660: \(String(cString: strerror(errno)))")
        }
    }

    static func isSocket(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }
}

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields (the
/// admin token, webhook secret, database URL and policy credentials live in them).
extension DovecotPolicyService: CustomStringConvertible {
    public var description: String { "DovecotPolicyService" }
}

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields (the
/// admin token, webhook secret, database URL and policy credentials live in them).
extension PostfixPolicyService: CustomStringConvertible {
    public var description: String { "PostfixPolicyService" }
}
