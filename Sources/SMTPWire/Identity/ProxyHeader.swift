// Reading a HAProxy PROXY protocol header (version 1, text, or version 2, binary) that a load
// balancer in front of the guard sends before anything else, so that the guard sees the real
// client. Only accepted from `smtp.haproxy_trusted_networks`: anyone else could claim any
// address. Strict: a header that is not exactly right ends the connection.

import GuardCore
import NIOCore

public enum ProxyHeader {
    /// What the header says.
    public enum Parsed: Equatable, Sendable {
        /// The real client and the address it connected to.
        case proxied(source: IPAddress, sourcePort: UInt16, destination: IPAddress, destinationPort: UInt16)
        /// A connection of the load balancer's own (v2 LOCAL, v1 UNKNOWN, or a family other
        /// than TCP over IPv4/IPv6): the connection's own addresses stand.
        case local
    }

    public struct Malformed: Error, Equatable, Sendable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// v1: at most 107 bytes including CRLF.
    public static let maxV1Length = 107
    /// v2: the 16-byte header plus addresses and TLVs; more than this is refused.
    public static let maxV2Length = 16 + 2048

    /// Takes a header from the front of `buffer`; nil when more bytes are needed (the buffer
    /// is untouched then). Throws when the bytes are not a valid header.
    public static func parse(_ buffer: inout ByteBuffer) throws(Malformed) -> Parsed? {
        let view = buffer.readableBytesView
        let signature = ClientIdentity.proxyV2Signature
        let v1Prefix = Array("PROXY ".utf8)
        // Decide the version from as many bytes as are there.
        let available = min(view.count, signature.count)
        if available == 0 { return nil }
        if Array(view.prefix(available)) == Array(signature.prefix(available)) {
            if view.count < 16 { return nil }
            return try self.parseV2(&buffer)
        }
        let prefixCount = min(view.count, v1Prefix.count)
        guard Array(view.prefix(prefixCount)) == Array(v1Prefix.prefix(prefixCount)) else {
            throw Malformed("no PROXY protocol header where one was expected")
        }
        return try self.parseV1(&buffer)
    }

    static func parseV1(_ buffer: inout ByteBuffer) throws(Malformed) -> Parsed? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: 0x0A) else {
            if view.count >= self.maxV1Length { throw Malformed("PROXY v1 header longer than \(self.maxV1Length) bytes") }
            return nil
        }
        let length = lf - view.startIndex + 1
        guard length <= self.maxV1Length, length >= 2, view[lf - 1] == 0x0D else {
            throw Malformed("PROXY v1 header not ended by CRLF within \(self.maxV1Length) bytes")
        }
        let line = Array(view[view.startIndex..<(lf - 1)])
        guard line.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { throw Malformed("PROXY v1 header with control characters") }
        let words = String(decoding: line, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false)
        guard words.count >= 2, words[0] == "PROXY" else { throw Malformed("PROXY v1 header malformed") }
        let result: Parsed
        switch words[1] {
        case "UNKNOWN":
            result = .local
        case "TCP4", "TCP6":
            guard words.count == 6, let source = IPAddress(String(words[2])), let destination = IPAddress(String(words[3])),
                let sourcePort = Self.port(words[4]), let destinationPort = Self.port(words[5]),
                // TCP4 takes IPv4 addresses only; TCP6 any (HAProxy on a dual-stack socket sends
                // IPv4 clients as ::ffff:a.b.c.d, which is the IPv4 address).
                words[1] == "TCP6"
                    ? words[2].contains(":") && words[3].contains(":")
                    : !words[2].contains(":") && !words[3].contains(":")
            else { throw Malformed("PROXY v1 header with bad addresses or ports") }
            result = .proxied(source: source, sourcePort: sourcePort, destination: destination, destinationPort: destinationPort)
        default:
            throw Malformed("PROXY v1 header with unknown protocol")
        }
        buffer.moveReaderIndex(forwardBy: length)
        return result
    }

    static func port(_ text: Substring) -> UInt16? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }), !(text.count > 1 && text.hasPrefix("0")) else { return nil }
        return UInt16(text)
    }

    static func parseV2(_ buffer: inout ByteBuffer) throws(Malformed) -> Parsed? {
        let start = buffer.readerIndex
        guard let versionCommand = buffer.getInteger(at: start + 12, as: UInt8.self),
            let family = buffer.getInteger(at: start + 13, as: UInt8.self),
            let length = buffer.getInteger(at: start + 14, as: UInt16.self)
        else { return nil }
        guard versionCommand >> 4 == 2 else { throw Malformed("PROXY v2 header with version \(versionCommand >> 4)") }
        let command = versionCommand & 0x0F
        guard command <= 1 else { throw Malformed("PROXY v2 header with unknown command \(command)") }
        let total = 16 + Int(length)
        guard total <= self.maxV2Length else { throw Malformed("PROXY v2 header of \(total) bytes") }
        guard buffer.readableBytes >= total else { return nil }
        defer { buffer.moveReaderIndex(forwardBy: total) }
        if command == 0 { return .local }  // LOCAL: health checks and the like
        switch family {
        case 0x11:  // TCP over IPv4
            guard length >= 12, let source = buffer.getInteger(at: start + 16, as: UInt32.self),
                let destination = buffer.getInteger(at: start + 20, as: UInt32.self),
                let sourcePort = buffer.getInteger(at: start + 24, as: UInt16.self),
                let destinationPort = buffer.getInteger(at: start + 26, as: UInt16.self)
            else { throw Malformed("PROXY v2 header too short for IPv4 addresses") }
            return .proxied(
                source: IPAddress(ipv4: source), sourcePort: sourcePort, destination: IPAddress(ipv4: destination), destinationPort: destinationPort)
        case 0x21:  // TCP over IPv6
            guard length >= 36, let sourceHigh = buffer.getInteger(at: start + 16, as: UInt64.self),
                let sourceLow = buffer.getInteger(at: start + 24, as: UInt64.self),
                let destinationHigh = buffer.getInteger(at: start + 32, as: UInt64.self),
                let destinationLow = buffer.getInteger(at: start + 40, as: UInt64.self),
                let sourcePort = buffer.getInteger(at: start + 48, as: UInt16.self),
                let destinationPort = buffer.getInteger(at: start + 50, as: UInt16.self)
            else { throw Malformed("PROXY v2 header too short for IPv6 addresses") }
            // IPAddress keeps IPv4 in its mapped form, so a mapped address is the IPv4 client.
            return .proxied(
                source: IPAddress(high: sourceHigh, low: sourceLow), sourcePort: sourcePort,
                destination: IPAddress(high: destinationHigh, low: destinationLow), destinationPort: destinationPort)
        default:
            return .local  // UDP, UNIX sockets, unspecified: nothing to take from it
        }
    }
}
