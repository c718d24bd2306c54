// The EHLO reply the client sees: the guard's own while the backend is not connected yet
// (`local`), or the backend's, edited (`edit`): the guard's own name in the
// first line, AUTH shown only to clients in the AUTH networks and only with the mechanisms
// the guard understands, and the extensions the guard does not relay (XCLIENT, XFORWARD,
// CHUNKING/BDAT) removed. STARTTLS is the guard's own: the backend's is never shown, the
// guard's is shown when it has a certificate and the session is not yet inside TLS.

import GuardCore

public struct EHLOEditor: Sendable {
    public var hostname: String
    public var offerAuth: Bool
    public var mechanisms: [AuthMechanism]
    /// The guard terminates TLS and the session is not inside it yet.
    public var offerSTARTTLS: Bool
    /// SIZE shown to the client is at most this (the guard's own limit).
    public var maxMessageSize: Int?

    public init(hostname: String, offerAuth: Bool, mechanisms: [AuthMechanism], offerSTARTTLS: Bool = false, maxMessageSize: Int? = nil) {
        self.hostname = hostname
        self.offerAuth = offerAuth
        self.mechanisms = mechanisms
        self.offerSTARTTLS = offerSTARTTLS
        self.maxMessageSize = maxMessageSize
    }

    /// Keywords never passed to the client.
    static let removed: Set<String> = ["XCLIENT", "XFORWARD", "STARTTLS", "CHUNKING", "BINARYMIME", "AUTH", "AUTH=LOGIN", "XEXCH50", "X-EXPS", "X-LINK2STATE", "XRDST"]

    /// The mechanisms a backend EHLO reply offers (from its AUTH line).
    public static func backendMechanisms(_ reply: SMTPReply) -> Set<AuthMechanism> {
        Set(self.offeredMechanismNames(reply).map { AuthMechanism(name: $0) }.filter { $0 != .other })
    }

    /// Every mechanism name an EHLO reply offers, in upper case, in order, once each (from its
    /// `AUTH` lines and the old `AUTH=` form), known to the guard or not.
    public static func offeredMechanismNames(_ reply: SMTPReply) -> [String] {
        var names: [String] = []
        for line in reply.lines.dropFirst() {
            let words = line.split(separator: " ").map { $0.uppercased() }
            guard let keyword = words.first else { continue }
            let offered = keyword == "AUTH" ? Array(words.dropFirst()) : keyword.hasPrefix("AUTH=") ? [String(keyword.dropFirst(5))] + words.dropFirst() : []
            for name in offered where !name.isEmpty && !names.contains(name) { names.append(name) }
        }
        return names
    }

    public static func offers(_ keyword: String, in reply: SMTPReply) -> Bool {
        reply.lines.dropFirst().contains { $0.split(separator: " ").first?.uppercased() == keyword }
    }

    /// The guard's own reply, while the backend is not connected: the extensions every
    /// backend the guard fronts (Postfix, Exim, Exchange) has, and the guard's own.
    public func local() -> (reply: SMTPReply, mechanisms: [AuthMechanism]) {
        var lines = [self.hostname]
        if self.offerSTARTTLS { lines.append("STARTTLS") }
        lines.append("PIPELINING")
        if let limit = self.maxMessageSize { lines.append("SIZE \(limit)") }
        let mechanisms = self.offerAuth ? self.mechanisms : []
        if !mechanisms.isEmpty { lines.append((["AUTH"] + mechanisms.map(\.rawValue)).joined(separator: " ")) }
        lines += ["ENHANCEDSTATUSCODES", "8BITMIME"]
        return (SMTPReply(code: 250, lines: lines), mechanisms)
    }

    /// The reply the client sees. `backend` is the backend's positive EHLO reply.
    public func edit(_ backend: SMTPReply) -> (reply: SMTPReply, mechanisms: [AuthMechanism]) {
        var lines = [self.hostname]
        let offered = EHLOEditor.backendMechanisms(backend)
        let mechanisms = self.offerAuth ? self.mechanisms.filter { offered.contains($0) } : []
        var authWritten = false
        for line in backend.lines.dropFirst() {
            let keyword = line.split(separator: " ").first.map { $0.uppercased() } ?? ""
            if keyword == "AUTH" || keyword.hasPrefix("AUTH=") {
                if !authWritten && !mechanisms.isEmpty {
                    lines.append((["AUTH"] + mechanisms.map(\.rawValue)).joined(separator: " "))
                    authWritten = true
                }
                continue
            }
            if keyword.isEmpty || EHLOEditor.removed.contains(keyword) { continue }
            if keyword == "SIZE", let limit = self.maxMessageSize {
                // The smaller of the backend's limit and the guard's; SIZE 0 means no limit.
                let backendLimit = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
                lines.append("SIZE \(backendLimit > 0 ? min(backendLimit, limit) : limit)")
                continue
            }
            lines.append(line)
        }
        if self.offerSTARTTLS {
            // After the first line, where clients that stop at the first extension still see it.
            lines.insert("STARTTLS", at: min(1, lines.count))
        }
        return (SMTPReply(code: backend.code, lines: lines), mechanisms)
    }
}
