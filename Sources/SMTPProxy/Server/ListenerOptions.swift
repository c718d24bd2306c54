import GuardCore
import NIOCore
import NIOPosix

extension ServerBootstrap {
    /// Binds `address`, IPv6 addresses with IPV6_V6ONLY: on Linux (net.ipv6.bindv6only = 0)
    /// a socket on `::` would otherwise take IPv4 too, and `0.0.0.0:587` beside `[::]:587`
    /// would fail with "address in use". IPv4 clients of `[::]` alone are then not served;
    /// list `0.0.0.0` too (the examples do).
    public func bind(listening address: HostPort) async throws -> any Channel {
        let bootstrap = address.isIPv6 ? self.serverChannelOption(ChannelOptions.ipv6Only, value: 1) : self
        return try await bootstrap.bind(host: address.host, port: address.port).get()
    }
}

extension ChannelOptions {
    /// IPPROTO_IPV6 / IPV6_V6ONLY.
    public static let ipv6Only = Types.SocketOption(level: .ipv6, name: .ipv6_v6only)
}
