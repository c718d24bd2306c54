// IPAddress and IPNetwork: the client identities the engine keys on.
//
// Every address is held as 128 bits. IPv4 is stored in its IPv4-mapped IPv6 form
// (::ffff:a.b.c.d), so one type, one hash and one masking rule serve both families, and a
// dual-stack socket that reports ::ffff:192.0.2.1 yields the same key as 192.0.2.1.

/// An IPv4 or IPv6 address.
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let high: UInt64
    public let low: UInt64

    static let mappedMarker: UInt64 = 0x0000_FFFF_0000_0000

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public init(ipv4 value: UInt32) {
        self.high = 0
        self.low = IPAddress.mappedMarker | UInt64(value)
    }

    public var isIPv4: Bool { self.high == 0 && (self.low >> 32) == 0xFFFF }

    /// The IPv4 value when this is an IPv4 address.
    public var ipv4: UInt32? { self.isIPv4 ? UInt32(truncatingIfNeeded: self.low) : nil }

    /// Prefix lengths are given in the family's own terms (0...32 for IPv4, 0...128 for IPv6).
    public var maxPrefixLength: Int { self.isIPv4 ? 32 : 128 }

    /// The address with every bit after `prefixLength` cleared.
    public func masked(to prefixLength: Int) -> IPAddress {
        let bits = self.isIPv4 ? 96 + min(max(prefixLength, 0), 32) : min(max(prefixLength, 0), 128)
        let highMask: UInt64 = bits >= 64 ? .max : (bits == 0 ? 0 : ~(UInt64.max >> UInt64(bits)))
        let lowBits = bits - 64
        let lowMask: UInt64 = lowBits <= 0 ? 0 : (lowBits >= 64 ? .max : ~(UInt64.max >> UInt64(lowBits)))
        return IPAddress(high: self.high & highMask, low: self.low & lowMask)
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    // MARK: - Parsing

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (with `::` and an embedded IPv4 tail).
    /// Brackets and a zone (`%eth0`) are not accepted: callers strip them where they belong.
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        if let v4 = IPAddress.parseIPv4(utf8[...]) {
            self.init(ipv4: v4)
            return
        }
        guard let (high, low) = IPAddress.parseIPv6(utf8) else { return nil }
        self.init(high: high, low: low)
    }

    static func parseIPv4(_ bytes: ArraySlice<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var octets = 0
        var current: UInt32 = 0
        var digits = 0
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, octets < 3 else { return nil }
                value = value << 8 | current
                octets += 1
                current = 0
                digits = 0
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                // No leading zeros ("010" is ambiguous: octal in some parsers).
                if digits == 1 && current == 0 { return nil }
                current = current * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                guard current <= 255, digits <= 3 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, octets == 3 else { return nil }
        return value << 8 | current
    }

    static func parseIPv6(_ bytes: [UInt8]) -> (UInt64, UInt64)? {
        guard bytes.count >= 2, bytes.count <= 45 else { return nil }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        var i = 0
        // A leading "::".
        if bytes.starts(with: [UInt8(ascii: ":"), UInt8(ascii: ":")]) {
            sawGap = true
            i = 2
            if i == bytes.count { return (0, 0) }
        } else if bytes.first == UInt8(ascii: ":") {
            return nil
        }
        while i < bytes.count {
            // Find the end of this group.
            var j = i
            while j < bytes.count && bytes[j] != UInt8(ascii: ":") { j += 1 }
            let group = bytes[i..<j]
            if group.contains(UInt8(ascii: ".")) {
                // Embedded IPv4: must be last.
                guard j == bytes.count, let v4 = parseIPv4(group) else { return nil }
                let words = [UInt16(v4 >> 16), UInt16(v4 & 0xFFFF)]
                if sawGap { tail += words } else { head += words }
                i = j
                break
            }
            guard !group.isEmpty, group.count <= 4 else { return nil }
            var word: UInt16 = 0
            for byte in group {
                guard let nibble = Hex.value(byte) else { return nil }
                word = word << 4 | UInt16(nibble)
            }
            if sawGap { tail.append(word) } else { head.append(word) }
            if j == bytes.count { i = j; break }
            // j points at ':'
            if j + 1 < bytes.count && bytes[j + 1] == UInt8(ascii: ":") {
                guard !sawGap else { return nil }
                sawGap = true
                i = j + 2
                if i == bytes.count { break }
            } else {
                i = j + 1
                guard i < bytes.count else { return nil }  // trailing single ':'
            }
        }
        let total = head.count + tail.count
        if sawGap {
            guard total <= 7 else { return nil }
        } else {
            guard total == 8 else { return nil }
        }
        let words = head + Array(repeating: 0, count: 8 - total) + tail
        var high: UInt64 = 0
        var low: UInt64 = 0
        for k in 0..<4 { high = high << 16 | UInt64(words[k]) }
        for k in 4..<8 { low = low << 16 | UInt64(words[k]) }
        return (high, low)
    }

    // MARK: - Formatting

    /// Dotted quad for IPv4; RFC 5952 canonical text for IPv6.
    public var description: String {
        if let v4 = self.ipv4 {
            return "\(v4 >> 24).\((v4 >> 16) & 0xFF).\((v4 >> 8) & 0xFF).\(v4 & 0xFF)"
        }
        var words = [UInt16](repeating: 0, count: 8)
        for k in 0..<4 {
            words[k] = UInt16(truncatingIfNeeded: self.high >> UInt64(48 - 16 * k))
            words[4 + k] = UInt16(truncatingIfNeeded: self.low >> UInt64(48 - 16 * k))
        }
        // The longest run of two or more zero words is compressed (the first one on a tie).
        var bestStart = -1
        var bestLength = 0
        var k = 0
        while k < 8 {
            if words[k] == 0 {
                var end = k
                while end < 8 && words[end] == 0 { end += 1 }
                if end - k > bestLength && end - k >= 2 {
                    bestStart = k
                    bestLength = end - k
                }
                k = end
            } else {
                k += 1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            range.map { String(words[$0], radix: 16) }.joined(separator: ":")
        }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}

/// A network in CIDR notation: `192.0.2.0/24`, `2001:db8::/32`. A bare address is a host network.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    /// In the family's own terms: 0...32 for IPv4, 0...128 for IPv6.
    public let prefixLength: Int

    public init(address: IPAddress, prefixLength: Int) {
        self.prefixLength = min(max(prefixLength, 0), address.maxPrefixLength)
        self.address = address.masked(to: self.prefixLength)
    }

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        var length = address.maxPrefixLength
        if parts.count == 2 {
            guard let value = Int(parts[1]), value >= 0, value <= address.maxPrefixLength,
                parts[1].allSatisfy({ $0.isASCII && $0.isNumber })
            else { return nil }
            length = value
        }
        self.init(address: address, prefixLength: length)
    }

    public func contains(_ candidate: IPAddress) -> Bool {
        candidate.isIPv4 == self.address.isIPv4 && candidate.masked(to: self.prefixLength) == self.address
    }

    public var description: String { "\(self.address)/\(self.prefixLength)" }
}

/// A list of networks with a membership test; empty matches nothing.
public struct NetworkList: Sendable, Equatable {
    public var networks: [IPNetwork]

    public init(_ networks: [IPNetwork]) { self.networks = networks }

    public func contains(_ address: IPAddress) -> Bool {
        for network in self.networks where network.contains(address) { return true }
        return false
    }

    public static let everywhere = NetworkList([IPNetwork("0.0.0.0/0")!, IPNetwork("::/0")!])
}
