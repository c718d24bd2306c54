// The guard's IPAddress from a NIO SocketAddress, read from the sockaddr itself.

import GuardCore
import NIOCore

extension IPAddress {
    /// The address of a socket, read from its sockaddr (no text round trip).
    init?(_ socketAddress: SocketAddress) {
        switch socketAddress {
        case .v4(let v4):
            self.init(ipv4: UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6):
            var storage = v6.address.sin6_addr
            let (high, low) = withUnsafeBytes(of: &storage) { raw -> (UInt64, UInt64) in
                (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                 UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
            let address = IPAddress(high: high, low: low)
            // An IPv4-mapped address is the IPv4 address.
            self = address.isIPv4 ? IPAddress(ipv4: UInt32(truncatingIfNeeded: low)) : address
        case .unixDomainSocket:
            return nil
        }
    }
}
