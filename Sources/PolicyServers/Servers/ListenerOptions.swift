import GuardCore
import NIOCore
import NIOPosix

extension ServerBootstrap {
    /// Binds `address`, IPv6 addresses with IPV6_V6ONLY and literals without getaddrinfo, as
    /// the proxy's listeners (SMTPProxy/Server/ListenerOptions.swift; the two modules share no
    /// NIOPosix module).
    func bind(listening address: HostPort) async throws -> any Channel {
        let bootstrap = address.isIPv6 ? self.serverChannelOption(ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only), value: 1) : self
        let socketAddress = try (try? SocketAddress(ipAddress: address.host, port: address.port)) ?? SocketAddress.makeAddressResolvingHost(address.host, port: address.port)
        return try await bootstrap.bind(to: socketAddress).get()
    }
}
