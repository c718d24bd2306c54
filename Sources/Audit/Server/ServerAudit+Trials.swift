// ServerAudit's trials: whether the server relays for a stranger, whether default and weak
// logins work, and whether repeated failures meet a tarpit or a lockout.

import Foundation
import GuardCore
import SMTPWire

extension ServerAudit {
    // MARK: - Open relay

    func relayFinding(_ conversation: SMTPConversation) async throws -> AuditFinding {
        let mail = try await conversation.command("MAIL FROM:<\(self.options.relaySender)>")
        guard mail.code == 250 else {
            _ = try await conversation.command("RSET")
            if mail.code < 500 {
                return AuditFinding("open-relay", .info, "not known: MAIL FROM was refused for now (\(mail.code) \(mail.lines.first ?? "")), so relaying could not be tried")
            }
            return AuditFinding("open-relay", .pass, "MAIL FROM an outside sender is refused without AUTH (\(mail.code))")
        }
        let rcpt = try await conversation.command("RCPT TO:<\(self.options.relayRecipient)>")
        _ = try await conversation.command("RSET")  // never DATA: nothing is sent
        if rcpt.code == 250 || rcpt.code == 251 {
            return AuditFinding(
                "open-relay", .fail,
                "an outside recipient (\(self.options.relayRecipient)) is accepted from an outside sender without AUTH: this is an open relay",
                fix: "relay only for authenticated clients and your own networks (Postfix: mynetworks = your own addresses only, smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination)")
        }
        if rcpt.code < 500 {
            return AuditFinding(
                "open-relay", .warn,
                "an outside recipient is refused only for now (\(rcpt.code) \(rcpt.lines.first ?? "")): greylisting may hide an open relay that a retry would find",
                fix: "refuse relaying for good (5xx) before any greylisting (Postfix: reject_unauth_destination before check_policy_service)")
        }
        return AuditFinding("open-relay", .pass, "relaying to an outside recipient is refused without AUTH (\(rcpt.code) \(rcpt.lines.first ?? ""))")
    }

    // MARK: - Logins

    static let guestLogins = [
        TrialLogin(username: "guest", password: "guest", rule: "the username as password"),
        TrialLogin(username: "guest", password: "", rule: "a blank password"),
        TrialLogin(username: "anonymous", password: "", rule: "a blank password"),
    ]

    /// The seed articles' combinations, most tried first: the username as password, with 123,
    /// and the list's commonest passwords for the commonest names.
    static let defaultLogins: [TrialLogin] = {
        var logins: [TrialLogin] = []
        for name in ["admin", "test", "root", "webmaster", "administrator", "info", "user", "postmaster", "backup", "demo", "mail", "sales"] {
            logins.append(TrialLogin(username: name, password: name, rule: "the username as password"))
        }
        for name in ["admin", "test", "root", "webmaster"] {
            logins.append(TrialLogin(username: name, password: name + "123", rule: "the username followed by 123"))
        }
        for password in ["123456", "password", "1234", "12345678"] {
            for name in ["admin", "test"] { logins.append(TrialLogin(username: name, password: password, rule: "a password of the seed list")) }
        }
        return logins
    }()

    /// Tries `logins` one by one (and AUTH ANONYMOUS when offered and asked), reconnecting
    /// when the server closes; stops at the first accepted one.
    func loginFinding(check: String, logins: [TrialLogin], anonymous: Bool, passed: String) async throws -> AuditFinding {
        var remaining = logins[...]
        var tried = 0
        var tryAnonymous = anonymous
        var refusedConnections = 0
        var droppedConnections = 0
        var temporary = 0  // answers such as 454 "temporary authentication failure": nothing was learnt
        var clearTextAvoided = false
        while !remaining.isEmpty || tryAnonymous {
            let outcome: AuditFinding?
            do {
                outcome = try await self.attempts(check: check, remaining: &remaining, tried: &tried, tryAnonymous: &tryAnonymous,
                    refusedConnections: &refusedConnections, droppedConnections: &droppedConnections, temporary: &temporary,
                    clearTextAvoided: &clearTextAvoided)
            } catch is ProbeError {
                refusedConnections += 1  // the first session worked: a connection refused now is this client refused
                outcome = nil
            }
            if let outcome { return outcome }
            if refusedConnections > 2 || droppedConnections > 2 { break }
        }
        if refusedConnections > 2 {
            return AuditFinding(
                check, .info,
                "the server refuses this client (banned by the earlier failed logins?) after \(tried) attempts here; \(remaining.count) of \(logins.count) not tried")
        }
        if droppedConnections > 2 {
            return AuditFinding(check, .info, "the server dropped the connection \(droppedConnections) times during a login; \(remaining.count) of \(logins.count) not tried")
        }
        if clearTextAvoided {
            return AuditFinding(check, .info, "not tried: TLS failed on a later connection, and logins are never sent in clear text where TLS is offered")
        }
        if tried > 0 && temporary == tried {
            return AuditFinding(check, .info, "not known: every login was answered with a temporary failure (4xx)")
        }
        return AuditFinding(check, .pass, passed)
    }

    /// One connection's worth of `loginFinding`: the accepted login's finding, or nil.
    func attempts(
        check: String, remaining: inout ArraySlice<TrialLogin>, tried: inout Int, tryAnonymous: inout Bool,
        refusedConnections: inout Int, droppedConnections: inout Int, temporary: inout Int, clearTextAvoided: inout Bool
    ) async throws -> AuditFinding? {
        try await self.session { conversation, greeting, capabilities in
            guard greeting.code == 220 else { refusedConnections += 1; return nil }
            guard capabilities.tlsError == nil else {
                clearTextAvoided = true
                remaining = []
                tryAnonymous = false
                return nil
            }
            let offered = EHLOEditor.offeredMechanismNames(capabilities.current)
            if tryAnonymous {
                tryAnonymous = false
                if offered.contains("ANONYMOUS") {
                    let reply = try await conversation.command("AUTH ANONYMOUS \(Base64.encode("smtpguard-audit"))")
                    if reply.code == 235 {
                        return AuditFinding("anonymous-login", .fail, "AUTH ANONYMOUS is accepted", fix: "disable anonymous authentication")
                    }
                }
            }
            guard let mechanism = self.loginMechanism(capabilities.current) else { remaining = []; return nil }
            while let login = remaining.first {
                if tried > 0 { try await self.sleep(self.options.credentialInterval) }
                remaining = remaining.dropFirst()
                tried += 1
                let reply: SMTPReply
                do {
                    reply = try await self.authenticate(conversation, login, mechanism: mechanism)
                } catch is ProbeError {
                    droppedConnections += 1  // dropped mid-login (a server-side limit): go on from a new one
                    return nil
                }
                if reply.code == 235 {
                    return AuditFinding(
                        check, .fail, "the login \(login.username) with \(login.rule) is accepted",
                        fix: "change the password of \(login.username) (smtpguard check-password) or remove the account, and put SMTPGuard's weak-credential firewall in front")
                }
                if (400..<500).contains(reply.code) { temporary += 1 }
                if reply.code == 421 || reply.code == 554 { return nil }  // closed on us: reconnect for the next
            }
            return nil
        }
    }

    /// PLAIN when offered, else LOGIN; nil when neither is (the audit tries no other).
    func loginMechanism(_ ehlo: SMTPReply) -> String? {
        let offered = EHLOEditor.offeredMechanismNames(ehlo)
        return offered.contains("PLAIN") ? "PLAIN" : offered.contains("LOGIN") ? "LOGIN" : nil
    }

    /// One AUTH exchange; the reply that ends it.
    func authenticate(_ conversation: SMTPConversation, _ login: TrialLogin, mechanism: String) async throws -> SMTPReply {
        if mechanism == "PLAIN" {
            let response = Base64.encode(Array("\0\(login.username)\0\(login.password)".utf8))
            return try await conversation.command("AUTH PLAIN \(response)")
        }
        var reply = try await conversation.command("AUTH LOGIN")
        guard reply.code == 334 else { return reply }
        reply = try await conversation.command(Base64.encode(login.username))
        guard reply.code == 334 else { return reply }
        return try await conversation.command(Base64.encode(login.password))
    }

    // MARK: - Tarpit and lockout

    /// Sends failing logins (a random username that cannot exist, so no real account is ever
    /// locked) and times each answer. A connection dropped during a login counts that login's
    /// time and goes on from a new connection; a refused connection or greeting is a block.
    func lockoutFinding() async throws -> AuditFinding {
        let clock = ContinuousClock()
        let began = clock.now
        var times: [Duration] = []
        var blocked: String?
        var drops = 0
        let name = "smtpguard-audit-\(UInt32.random(in: 0...UInt32.max))"
        func more() -> Bool { times.count < self.options.lockoutProbes && blocked == nil && clock.now - began < self.options.lockoutBudget }
        while more(), drops <= 3 {
            do {
                let timed = try await self.session { conversation, greeting, capabilities -> Bool in
                    guard greeting.code == 220 else {
                        blocked = "a new connection is greeted with \(greeting.code) \(greeting.lines.first ?? "")"
                        return true
                    }
                    guard capabilities.tlsError == nil else { return false }  // never time logins in clear text
                    guard let mechanism = self.loginMechanism(capabilities.current) else {
                        if !times.isEmpty { blocked = "AUTH is no longer offered" }
                        return !times.isEmpty
                    }
                    while more() {
                        let login = TrialLogin(username: name, password: String(UInt64.random(in: 0...UInt64.max), radix: 36), rule: "")
                        let sent = clock.now
                        let reply: SMTPReply
                        do {
                            reply = try await self.authenticate(conversation, login, mechanism: mechanism)
                        } catch is ProbeError {
                            times.append(clock.now - sent)
                            drops += 1
                            return true
                        }
                        times.append(clock.now - sent)
                        if reply.code == 421 || reply.code == 554 {
                            blocked = "the server answers \(reply.code) \(reply.lines.first ?? "")"
                        }
                    }
                    return true
                }
                if !timed { break }  // no AUTH to time
            } catch let error as ProbeError {
                // The first session worked: a connection that fails now is this client refused.
                blocked = "the server refuses new connections (\(error))"
            }
        }
        let shown = times.map { Self.milliseconds($0) }.joined(separator: ", ")
        let dropped = drops > 0 ? "; the server dropped the connection \(drops) times" : ""
        if let blocked {
            let when = times.isEmpty ? "after the earlier checks' failed logins" : "after \(times.count) failed logins here (answers took \(shown))"
            return AuditFinding("lockout", .pass, "failed logins are blocked: \(blocked), \(when)")
        }
        guard let first = times.first, let last = times.last else {
            return AuditFinding("lockout", .info, "no failed login could be timed (AUTH not offered, or TLS failed on a later connection)")
        }
        let slow = Duration.seconds(1)
        let sorted = times.sorted()
        let median = sorted[sorted.count / 2]
        if median >= slow || (last >= slow && last >= first * 3) {
            return AuditFinding("lockout", .pass, "failed logins are slowed down (tarpit): \(times.count) answers took \(shown)\(dropped)")
        }
        return AuditFinding(
            "lockout", .fail,
            "\(times.count) failed logins were answered in \(shown), none slowed or blocked\(dropped): a bot can guess at full speed",
            fix: "slow and ban password guessers: put SMTPGuard in front, or at least Dovecot's auth_failure_delay and Postfix's smtpd_client_auth_rate_limit")
    }

    /// "0.4 ms", "35 ms", "2.0 s".
    static func milliseconds(_ duration: Duration) -> String {
        let ms = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
        if ms >= 1000 { return String(format: "%.1f s", ms / 1000) }
        return ms < 10 ? String(format: "%.1f ms", ms) : "\(Int(ms)) ms"
    }
}
