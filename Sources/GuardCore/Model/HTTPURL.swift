// An http:// or https:// address (a webhook, the admin API), taken apart: http:// or https://, a host, an optional port, a path.

public struct HTTPURL: Sendable, Hashable, CustomStringConvertible {
    public var tls: Bool
    public var host: String
    public var port: Int
    /// The path and query, "/" at least.
    public var path: String

    public init?(_ text: String) {
        let rest: Substring
        if text.lowercased().hasPrefix("https://") {
            self.tls = true
            rest = text.dropFirst(8)
        } else if text.lowercased().hasPrefix("http://") {
            self.tls = false
            rest = text.dropFirst(7)
        } else {
            return nil
        }
        let authority = rest.prefix(while: { $0 != "/" && $0 != "?" })
        let path = rest.dropFirst(authority.count)
        guard !authority.isEmpty, !authority.contains("@"), !text.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } == true }) else {
            return nil
        }
        if let hostPort = HostPort(String(authority)) {
            self.host = hostPort.host
            self.port = hostPort.port
        } else if !authority.contains(":") || (authority.hasPrefix("[") && authority.hasSuffix("]")) {
            self.host = authority.hasPrefix("[") ? String(authority.dropFirst().dropLast()) : String(authority)
            self.port = self.tls ? 443 : 80
        } else {
            return nil
        }
        guard !self.host.isEmpty else { return nil }
        self.path = path.isEmpty ? "/" : (path.hasPrefix("?") ? "/" + path : String(path))
    }

    /// The Host header's value.
    public var hostHeader: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return self.port == (self.tls ? 443 : 80) ? host : "\(host):\(self.port)"
    }

    public var description: String { "\(self.tls ? "https" : "http")://\(self.hostHeader)\(self.path)" }
}
