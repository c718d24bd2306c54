// Hummingbird's HTTP/1 channel and a responder (a router) on a listener of our own, shared by
// the admin server and the ban list: Hummingbird's own server cannot bind IPv6-only, and
// `[::]:8025` must not take 0.0.0.0's port. Talks to whoever connects to `address`; trusts
// nothing they send (the responder decides), and never logs a request's content.

import GuardCore
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import ServiceLifecycle

struct HTTPListener {
    /// What the listener serves, for the log ("admin API", "ban list").
    let name: String
    let address: HostPort
    /// The log of the requests (Hummingbird's per-request lines are left out).
    let logger: Logger

    init(name: String, address: HostPort, logger: Logger) {
        self.name = name
        self.address = address
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .notice)
        self.logger = serverLogger
    }

    /// Binds `address` (IPv6 addresses IPv6-only, literals as they are), says so through
    /// `listening` with the address bound, and serves `responder` until graceful shutdown:
    /// then `shuttingDown` runs, idle connections close and the listener stops accepting.
    /// A bind that fails is thrown as `bindFailed` makes it.
    func run<Responder: HTTPResponder>(
        _ responder: Responder, bindFailed: (any Error) -> any Error, listening: (HostPort) async -> Void,
        shuttingDown: @escaping @Sendable () -> Void = {}
    ) async throws where Responder.Context: RequestContext, Responder.Context.Source == ApplicationRequestContextSource {
        let requestLogger = self.logger
        let http = HTTP1Channel(responder: { request, responseWriter, channel in
            let context = Responder.Context(source: .init(channel: channel, logger: requestLogger))
            let response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch {
                requestLogger.debug("\(self.name) request failed", metadata: ["error.type": "\(type(of: error))"])
                response = Response(status: .internalServerError)
            }
            try await responseWriter.write(response: response.head, body: response.body)
        })
        let group = MultiThreadedEventLoopGroup.singleton
        let quiescing = ServerQuiescingHelper(group: group)
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.allowRemoteHalfClosure, value: true)
        if self.address.isIPv6 {
            bootstrap = bootstrap.serverChannelOption(ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only), value: 1)
        }
        let server: NIOAsyncChannel<HTTP1Channel.Value, Never>
        do {
            // An address literal as it is (getaddrinfo may map `::` to `::ffff:0.0.0.0`).
            let socketAddress =
                try (try? SocketAddress(ipAddress: self.address.host, port: self.address.port))
                ?? SocketAddress.makeAddressResolvingHost(self.address.host, port: self.address.port)
            server = try await bootstrap.bind(to: socketAddress) { channel in
                http.setup(channel: channel, logger: requestLogger)
            }
        } catch {
            throw bindFailed(error)
        }
        let bound = server.channel.localAddress.flatMap { address in address.port.map { HostPort(host: address.ipAddress ?? self.address.host, port: $0) } } ?? self.address
        await listening(bound)
        let (logger, name) = (self.logger, self.name)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { connections in
                do {
                    try await server.executeThenClose { inbound in
                        for try await connection in inbound {
                            connections.addTask { await http.handle(value: connection, logger: requestLogger) }
                        }
                    }
                } catch {
                    logger.error("\(name): accepting connections failed: \(error)")
                }
            }
        } onGracefulShutdown: {
            shuttingDown()
            quiescing.initiateShutdown(promise: nil)
        }
    }
}
