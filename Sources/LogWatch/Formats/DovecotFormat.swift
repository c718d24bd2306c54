// Dovecot 2.3 / 2.4 auth and auth-worker lines, from syslog or from Dovecot's own log file:
//   auth: Info: passwd-file(alice,192.0.2.7): Password mismatch
//   auth-worker(123): Info: pam(alice,192.0.2.7,<sessionid>): pam_authenticate() failed: …
//   auth: Info: passwd-file(nosuchuser,192.0.2.7): unknown user
//   imap-login: Info: Disconnected: … (auth failed, 3 attempts in 6 secs): user=<alice>, … rip=192.0.2.7, …
// In "passdb(USER,ADDR[,<session>])" the address is taken from the right, so a username with
// commas or parentheses cannot change it.

import GuardCore

public struct DovecotFormat: LogFormat {
    public let name = "dovecot"
    public let rules = ["password_mismatch", "unknown_user", "auth_failed_attempts"]
    public init() {}

    static let passwordMismatch = Array("): Password mismatch".utf8)
    static let unknownUser = Array("): unknown user".utf8)
    static let infoPrefix = Array("Info: ".utf8)
    static let authFailed = Array("(auth failed, ".utf8)
    static let rip = Array(", rip=".utf8)
    static let user = Array("user=<".utf8)

    public func match(message: ArraySlice<UInt8>, program: ArraySlice<UInt8>) -> LogMatch? {
        var body = message
        // Through syslog: "dovecot: auth: Info: …"; in Dovecot's own file the program is "auth".
        for service in ["auth: ", "auth-worker("] {
            if body.hasPrefix(Array(service.utf8), at: body.startIndex) {
                guard let colon = body.find(Array(": ".utf8)) else { return nil }
                body = body[(colon + 2)...]
                break
            }
        }
        if body.hasPrefix(Self.infoPrefix, at: body.startIndex) { body = body[(body.startIndex + Self.infoPrefix.count)...] }
        for (suffix, rule) in [(Self.passwordMismatch, "password_mismatch"), (Self.unknownUser, "unknown_user")] where body.hasSuffix(suffix) {
            let close = body.endIndex - suffix.count  // the ")" of "passdb(…)"
            guard let open = body[..<close].firstIndex(of: UInt8(ascii: "(")) else { return .suspect }
            var fields = body[(open + 1)..<close].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            if let last = fields.last, last.first == UInt8(ascii: "<") { fields.removeLast() }  // <session id>
            guard fields.count >= 2, let address = IPAddress(fields.removeLast().text) else { return .suspect }
            let username = fields.map(\.text).joined(separator: ",")
            return .attempt(rule: rule, client: address, username: username, outcome: .failure, count: 1)
        }
        // Login processes on disconnect: "(auth failed, N attempts in S secs): user=<U>, … rip=ADDR, …"
        if let at = body.find(Self.authFailed) {
            var i = at + Self.authFailed.count
            var count = 0
            while i < body.endIndex, let digit = Optional(body[i]), digit >= 0x30 && digit <= 0x39 {
                count = count * 10 + Int(digit - 0x30)
                i += 1
            }
            guard count > 0, let ripAt = Self.lastIndex(of: Self.rip, in: body) else { return .suspect }
            var end = ripAt + Self.rip.count
            while end < body.endIndex && body[end] != UInt8(ascii: ",") { end += 1 }
            guard let address = IPAddress(body[(ripAt + Self.rip.count)..<end].text) else { return .suspect }
            var username = ""
            if let userAt = body.find(Self.user, from: i), let close = body[(userAt + Self.user.count)...].firstIndex(of: UInt8(ascii: ">")) {
                username = body[(userAt + Self.user.count)..<close].text
            }
            return .attempt(rule: "auth_failed_attempts", client: address, username: username, outcome: .failure, count: min(count, 100))
        }
        return looksLikeAuthFailure(body) ? .suspect : nil
    }

    static func lastIndex(of needle: [UInt8], in message: ArraySlice<UInt8>) -> Int? {
        var found: Int?
        var from = message.startIndex
        while let at = message.find(needle, from: from) {
            found = at
            from = at + 1
        }
        return found
    }
}
