// Dovecot 2.3 / 2.4 auth and auth-worker lines, from syslog or from Dovecot's own log file:
//   auth: Info: passwd-file(alice,192.0.2.7): Password mismatch
//   auth-worker(123): Info: pam(alice,192.0.2.7,<sessionid>): pam_authenticate() failed: …
//   auth-worker(123): Info: conn unix:auth-worker (pid=9,uid=97): auth-worker<1>: sql(alice,192.0.2.7,<id>): Password mismatch   (2.4)
//   auth: Info: passwd-file(nosuchuser,192.0.2.7): unknown user
//   imap-login: Info: Disconnected: … (auth failed, 3 attempts in 6 secs): user=<alice>, … rip=192.0.2.7, …
//   imap-login: Info: Login aborted: Logged out (auth failed, 1 attempts in 2 secs) (auth_failed): user=<alice>, … rip=…   (2.4)
// In "passdb(USER,ADDR[,<session>])" the address is the rightmost field that is an address, so
// a username with commas or parentheses cannot change it.

import GuardCore

public struct DovecotFormat: LogFormat {
    public let name = "dovecot"
    public let rules = ["password_mismatch", "unknown_user", "pam_failed", "auth_failed_attempts"]
    public init() {}

    static let infoPrefix = Array("Info: ".utf8)
    static let authFailed = Array("(auth failed, ".utf8)
    static let rip = Array(", rip=".utf8)
    static let user = Array("user=<".utf8)
    static let workerConnection = Array("conn ".utf8)
    static let workerName = Array(": auth-worker<".utf8)
    /// What follows "passdb(USER,ADDR…)" on a failure, and the rule it counts under.
    /// `followed` is the verdict and " (", for verdicts with a remark after them.
    static let verdicts: [(text: [UInt8], followed: [UInt8], rule: String, wholeRest: Bool)] = [
        ("): Password mismatch", "password_mismatch", false), ("): unknown user", "unknown_user", false),
        ("): pam_authenticate() failed: ", "pam_failed", true), ("): invalid credentials", "password_mismatch", false),
    ].map { (Array($0.0.utf8), Array(($0.0 + " (").utf8), $0.1, $0.2) }
    static let services = [Array("auth: ".utf8), Array("auth-worker(".utf8)]

    static let dovecot = Array("dovecot".utf8)
    static let auth = Array("auth".utf8)
    static let login = Array("-login".utf8)

    public func match(line: ArraySlice<UInt8>, message: ArraySlice<UInt8>, program: ArraySlice<UInt8>) -> LogMatch? {
        // Syslog's "dovecot", or in Dovecot's own file "auth", "auth-worker(N)", "imap-login" …
        guard program.isEmpty || program.hasPrefix(Self.dovecot, at: program.startIndex) || program.hasPrefix(Self.auth, at: program.startIndex)
            || program.hasSuffix(Self.login)
        else { return nil }
        var body = message
        // Through syslog: "dovecot: auth: Info: …"; in Dovecot's own file the program is "auth".
        for service in Self.services {
            if body.hasPrefix(service, at: body.startIndex) {
                guard let colon = body.find(Needles.colonSpace) else { return nil }
                body = body[(colon + 2)...]
                break
            }
        }
        if body.hasPrefix(Self.infoPrefix, at: body.startIndex) { body = body[(body.startIndex + Self.infoPrefix.count)...] }
        // 2.4 auth-worker: "conn unix:auth-worker (pid=…,uid=…): auth-worker<N>: passdb(…)…"
        if body.hasPrefix(Self.workerConnection, at: body.startIndex), let at = body.find(Self.workerName),
            let colon = body.find(Needles.colonSpace, from: at + Self.workerName.count)
        {
            body = body[(colon + 2)...]
        }
        for verdict in Self.verdicts {
            let close: Int
            if verdict.wholeRest {
                guard let at = body.find(verdict.text) else { continue }
                close = at
            } else {
                // The verdict ends the line, or is followed by " (" (e.g. "(given password: …)").
                if body.hasSuffix(verdict.text) {
                    close = body.endIndex - verdict.text.count
                } else if let at = body.findLast(verdict.followed) {
                    close = at
                } else {
                    continue
                }
            }
            guard let open = body[..<close].firstIndex(of: UInt8(ascii: "(")) else { return .suspect }
            var fields = body[(open + 1)..<close].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            // The rightmost field that is an address; a <session id> or other fields may follow it.
            var address: IPAddress?
            while fields.count >= 2 {
                if let found = IPAddress(fields.removeLast().text) {
                    address = found
                    break
                }
            }
            guard let address else { return .suspect }
            let username = fields.map(\.text).joined(separator: ",")
            return .attempt(rule: verdict.rule, client: address, username: username, outcome: .failure, count: 1)
        }
        // Login processes on disconnect: "(auth failed, N attempts in S secs): user=<U>, … rip=ADDR, …"
        if let at = body.find(Self.authFailed) {
            var i = at + Self.authFailed.count
            var count = 0
            while i < body.endIndex, body[i] >= 0x30 && body[i] <= 0x39, count < 1_000_000 {
                count = count * 10 + Int(body[i] - 0x30)
                i += 1
            }
            guard count > 0, let ripAt = body.findLast(Self.rip) else { return .suspect }
            var end = ripAt + Self.rip.count
            while end < body.endIndex && body[end] != UInt8(ascii: ",") { end += 1 }
            guard let address = IPAddress(body[(ripAt + Self.rip.count)..<end].text) else { return .suspect }
            var username = ""
            if let userAt = body.find(Self.user, from: i), userAt < ripAt,
                let close = body[(userAt + Self.user.count)..<ripAt].lastIndex(of: UInt8(ascii: ">"))
            {
                username = body[(userAt + Self.user.count)..<close].text
            }
            return .attempt(rule: "auth_failed_attempts", client: address, username: username, outcome: .failure, count: min(count, 100))
        }
        return looksLikeAuthFailure(body) ? .suspect : nil
    }
}
