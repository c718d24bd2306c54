// Telling the backend who the real client is: Postfix's XCLIENT command and HAProxy's
// PROXY protocol header, version 1 (text) and version 2 (binary).

import GuardCore
import NIOCore

public enum ClientIdentity {
    /// xtext (RFC 3461): printable ASCII except `+` and `=` as is, everything else `+XX`.
    public static func xtext(_ value: String) -> String {
        var out = ""
        for byte in value.utf8 {
            if byte >= 0x21 && byte <= 0x7E && byte != UInt8(ascii: "+") && byte != UInt8(ascii: "=") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "+" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }

    /// `XCLIENT NAME=[UNAVAILABLE] ADDR=… PORT=…` (no CRLF). The guard does no DNS, so the
    /// name is unavailable and Postfix logs the client as `unknown[ADDR]`.
    public static func xclientCommand(client: IPAddress, port: UInt16?, helo: String? = nil) -> String {
        let address = client.isIPv4 ? client.description : "IPV6:" + client.description
        var command = "XCLIENT NAME=[UNAVAILABLE] ADDR=\(self.xtext(address))"
        if let port { command += " PORT=\(port)" }
        if let helo, !helo.isEmpty { command += " HELO=\(self.xtext(helo))" }
        return command
    }

    /// PROXY protocol v1: `PROXY TCP4 src dst sport dport\r\n`. Mixed families are sent as
    /// UNKNOWN, as the specification says.
    public static func proxyV1(source: IPAddress, sourcePort: UInt16, destination: IPAddress, destinationPort: UInt16) -> String {
        guard source.isIPv4 == destination.isIPv4 else { return "PROXY UNKNOWN\r\n" }
        let family = source.isIPv4 ? "TCP4" : "TCP6"
        return "PROXY \(family) \(source) \(destination) \(sourcePort) \(destinationPort)\r\n"
    }

    public static let proxyV2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    /// PROXY protocol v2, command PROXY, TCP over IPv4 or IPv6; no TLVs.
    public static func proxyV2(source: IPAddress, sourcePort: UInt16, destination: IPAddress, destinationPort: UInt16) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes(self.proxyV2Signature)
        buffer.writeInteger(UInt8(0x21))  // version 2, PROXY
        if source.isIPv4 && destination.isIPv4 {
            buffer.writeInteger(UInt8(0x11))  // TCP over IPv4
            buffer.writeInteger(UInt16(12))
            buffer.writeInteger(source.ipv4!)
            buffer.writeInteger(destination.ipv4!)
        } else {
            // Mixed families are sent as IPv6, IPv4 in its mapped form.
            buffer.writeInteger(UInt8(0x21))  // TCP over IPv6
            buffer.writeInteger(UInt16(36))
            buffer.writeInteger(source.high)
            buffer.writeInteger(source.low)
            buffer.writeInteger(destination.high)
            buffer.writeInteger(destination.low)
        }
        buffer.writeInteger(sourcePort)
        buffer.writeInteger(destinationPort)
        return buffer
    }
}
