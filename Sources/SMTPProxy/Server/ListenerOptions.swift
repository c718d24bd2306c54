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
        return try await bootstrap.bind(to: try SocketAddress.listening(address)).get()
    }
}

extension SocketAddress {
    /// An address literal as it is (getaddrinfo would turn `::` into `::ffff:0.0.0.0` on some
    /// hosts, or refuse it on a host with only `::1`); a name resolved.
    public static func listening(_ address: HostPort) throws -> SocketAddress {
        if let literal = try? SocketAddress(ipAddress: address.host, port: address.port) { return literal }
        return try SocketAddress.makeAddressResolvingHost(address.host, port: address.port)
    }
}

extension ChannelOptions {
    /// IPPROTO_IPV6 / IPV6_V6ONLY.
    public static let ipv6Only = Types.SocketOption(level: .ipv6, name: .ipv6_v6only)
}
