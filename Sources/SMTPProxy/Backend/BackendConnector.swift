// BackendConnector: how a session opens its connection to the backend (TCP, or TLS from
// the first byte), on the client's event loop.

import GuardCore
import NIOCore
import NIOPosix

/// Opens the connection to the backend on the client's event loop.
public protocol BackendConnector: Sendable {
    func connect(to target: HostPort, timeout: Duration, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel>
}

/// The real one: TCP to the configured backend. An address given as an IP literal is used
/// as it is; a host name is resolved for each connection (so DNS changes are followed).
/// With `implicitTLS`, TLS starts with the connection (a port 465 style backend).
public struct TCPBackendConnector: BackendConnector {
    let implicitTLS: BackendTLS?

    public init(implicitTLS: BackendTLS? = nil) {
        self.implicitTLS = implicitTLS
    }

    public func connect(to target: HostPort, timeout: Duration, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        let tls = self.implicitTLS
        let bootstrap = ClientBootstrap(group: eventLoop)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.nanoseconds(timeout.nanosecondsClamped))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(tls.makeHandler()) }
                }
            }
        if let address = try? SocketAddress(ipAddress: target.host, port: target.port) {
            return bootstrap.connect(to: address)
        }
        return bootstrap.connect(host: target.host, port: target.port)
    }
}
