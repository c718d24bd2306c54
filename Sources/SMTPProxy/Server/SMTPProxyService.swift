// SMTPProxyService: the SMTP proxy as a Service. It binds every configured listener, gives
// each accepted connection a ClientSessionHandler, and on graceful shutdown stops
// accepting, lets open sessions finish for a while, then closes what is left.
//
// Trusts: nothing from clients. Talks to: clients on the listeners, the backend mail
// server (one connection per client session), the Guard engine, the event sink.

import GuardCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

public final class SMTPProxyService: Service {
    private let shared: ProxyContext
    private let group: any EventLoopGroup
    private let drainTimeout: Duration
    private let boundAddresses = Mutex<[SocketAddress]>([])
    private let ready: (@Sendable ([SocketAddress]) -> Void)?

    /// - Parameters:
    ///   - ready: called once every listener is bound, with the bound addresses (port 0
    ///     in the configuration picks a free port: tests use this).
    public init(
        context: ProxyContext, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        drainTimeout: Duration = .seconds(10), ready: (@Sendable ([SocketAddress]) -> Void)? = nil
    ) {
        self.shared = context
        self.group = group
        self.drainTimeout = drainTimeout
        self.ready = ready
    }

    /// The bound addresses: the plain listeners first, then the implicit TLS ones.
    public var addresses: [SocketAddress] { self.boundAddresses.withLock { $0 } }

    public func run() async throws {
        let shared = self.shared
        func bootstrap(implicitTLS: Bool) -> ServerBootstrap {
            ServerBootstrap(group: self.group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // A trusted load balancer names the real client first, before any TLS.
                        let balancer = channel.remoteAddress.flatMap(IPAddress.init).map { shared.configuration.haproxyTrustedNetworks.contains($0) } ?? false
                        if balancer { try channel.pipeline.syncOperations.addHandler(ProxyHeaderHandler(logger: shared.logger)) }
                        if implicitTLS, let store = shared.tls {
                            // Each connection takes the certificate current at accept time.
                            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: store.context))
                        }
                        try channel.pipeline.syncOperations.addHandler(
                            ClientSessionHandler(shared: shared, implicitTLS: implicitTLS, awaitsProxyHeader: balancer))
                    }
                }
        }
        if !shared.configuration.listenTLS.isEmpty && shared.tls == nil {
            throw ProxyStartError(message: "listen_tls needs tls.certificate and tls.key")
        }

        var listeners: [any Channel] = []
        let wanted = shared.configuration.listen.map { ($0, false) } + shared.configuration.listenTLS.map { ($0, true) }
        for (listen, implicitTLS) in wanted {
            do {
                let channel = try await bootstrap(implicitTLS: implicitTLS).bind(listening: listen)
                listeners.append(channel)
                shared.logger.info(
                    "SMTP proxy listening",
                    metadata: [
                        "listen": .string("\(channel.localAddress.map(\.hostPortText) ?? listen.description)"),
                        "tls": .string(implicitTLS ? "implicit" : (shared.tls != nil ? "starttls" : "none")),
                        "backend": .string(shared.configuration.backend.description),
                    ])
            } catch {
                for channel in listeners { try? await channel.close() }
                throw ProxyStartError(message: "cannot listen on \(listen)\(implicitTLS ? " (listen_tls)" : ""): \(error)")
            }
        }
        let addresses = listeners.compactMap(\.localAddress)
        self.boundAddresses.withLock { $0 = addresses }
        self.ready?(addresses)

        // Run until shutdown; then stop accepting and drain.
        try? await gracefulShutdown()
        shared.logger.info("SMTP proxy stopping: no new connections; \(shared.registry.openConnections) sessions open")
        for channel in listeners { try? await channel.close() }
        let clock = ContinuousClock()
        let deadline = clock.now + self.drainTimeout
        while shared.registry.openConnections > 0 && clock.now < deadline && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let left = shared.registry.openChannels()
        if !left.isEmpty {
            shared.logger.info("closing \(left.count) sessions still open after \(self.drainTimeout.compactText)")
            for channel in left { channel.close(promise: nil) }
        }
    }
}

public struct ProxyStartError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { self.message }
}

extension SocketAddress {
    /// "ip:port" as the guard prints it.
    public var hostPortText: String {
        guard let ip = self.ipAddress else { return "\(self)" }
        return ip.contains(":") ? "[\(ip)]:\(self.port ?? 0)" : "\(ip):\(self.port ?? 0)"
    }
}

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields (the
/// admin token, webhook secret, database URL and policy credentials live in them).
extension SMTPProxyService: CustomStringConvertible {
    public var description: String { "SMTPProxyService" }
}
