// `smtpguard audit HOST[:PORT]`: connects like a client and checks what the seed articles
// tell an administrator to check by hand (telnet to port 25, EHLO, look for AUTH): the banner,
// AUTH before TLS, STARTTLS and the certificate, open relay, guest and default logins, and
// whether failed logins are slowed or blocked. Only the named host is contacted; no message
// is ever sent (the relay test stops after RCPT).

import Foundation
import GuardCore
import SMTPWire

public struct ServerAuditOptions: Sendable {
    public var host: String
    public var port: Int
    public var transport: ProbeTransport
    public var caFile: String?
    /// The local address to connect from (nil: the system's choice).
    public var source: String?
    /// For one reply, a connection or a TLS handshake.
    public var timeout: Duration = .seconds(10)
    public var ehloName: String
    public var relaySender = "smtpguard-audit@example.com"
    public var relayRecipient = "smtpguard-relay-test@example.net"
    /// Seed-list logins, only when asked; at most `maxCredentialAttempts`, one every
    /// `credentialInterval`, stopping at the first success.
    public var tryDefaultCredentials = false
    public var maxCredentialAttempts = 12
    public var credentialInterval: Duration = .seconds(1)
    /// Failed logins sent (as a username that cannot exist) to see whether they are slowed.
    public var lockoutProbes = 6
    /// The probing stops after this long (a tarpit that slow is itself the answer).
    public var lockoutBudget: Duration = .seconds(60)

    public init(host: String, port: Int, transport: ProbeTransport, ehloName: String) {
        self.host = host
        self.port = port
        self.transport = transport
        self.ehloName = ehloName
    }
}

public struct ServerAuditReport: Sendable {
    public var target: String
    public var greeting: String?
    public var tls: TLSDetails?
    public var findings: [AuditFinding]
}

/// A login tried by the audit: the username, the password, and how to name the password in
/// the report (never the password itself).
struct TrialLogin: Sendable {
    var username: String
    var password: String
    var rule: String
}

public struct ServerAudit: Sendable {
    public let options: ServerAuditOptions
    /// Called before each step, for a progress line.
    let progress: @Sendable (String) -> Void
    /// Waits between default-credential attempts (tests shorten it).
    let sleep: @Sendable (Duration) async throws -> Void

    public init(options: ServerAuditOptions, progress: @escaping @Sendable (String) -> Void = { _ in }) {
        self.options = options
        self.progress = progress
        self.sleep = { try await Task.sleep(for: $0) }
    }

    var target: String { IPAddress(self.options.host).map { $0.isIPv4 ? "\($0)" : "[\($0)]" } ?? self.options.host }

    public func run() async throws -> ServerAuditReport {
        var report = ServerAuditReport(target: "\(self.target):\(self.options.port)", findings: [])
        self.progress("connecting")
        // 1. What any client sees, and a login as guest.
        let authOffered = try await self.session { conversation, greeting, capabilities in
            report.greeting = greeting.lines.first
            report.tls = conversation.tlsDetails
            report.findings += self.capabilityFindings(greeting: greeting, capabilities: capabilities, conversation: conversation)
            guard capabilities.current.code == 250, capabilities.tlsError == nil else { return false }  // nothing more to learn
            self.progress("testing relay")
            report.findings.append(try await self.relayFinding(conversation))
            guard capabilities.ehlo.code == 250 else { return false }
            return self.loginMechanism(capabilities.current) != nil
        }
        guard authOffered else { return report }
        // 2. Guest, anonymous and (when asked) default logins.
        self.progress("trying guest logins")
        report.findings.append(try await self.loginFinding(
            check: "guest-login", logins: Self.guestLogins, anonymous: true,
            passed: "no guest or anonymous login is accepted"))
        if self.options.tryDefaultCredentials {
            self.progress("trying default credentials")
            let logins = Array(Self.defaultLogins.prefix(self.options.maxCredentialAttempts))
            report.findings.append(try await self.loginFinding(
                check: "default-credentials", logins: logins, anonymous: false,
                passed: "none of \(logins.count) default logins of the seed lists is accepted"))
        }
        // 3. Whether failures are slowed or blocked (last: it may get this address banned).
        self.progress("timing failed logins")
        report.findings.append(try await self.lockoutFinding())
        return report
    }

    // MARK: - Sessions

    struct Capabilities {
        /// The EHLO reply before TLS (or the only one with implicit TLS), and after STARTTLS.
        var ehlo: SMTPReply
        var current: SMTPReply
        var startTLSOffered: Bool
        var tlsError: String?
    }

    /// Connects, greets, and starts TLS when it can, then runs `body` on the best channel.
    func session<T>(_ body: (SMTPConversation, SMTPReply, Capabilities) async throws -> T) async throws -> T {
        try await SMTPProbe.session(
            host: self.options.host, port: self.options.port, transport: self.options.transport, caFile: self.options.caFile,
            source: self.options.source, timeout: self.options.timeout
        ) { conversation, greeting in
            guard greeting.code == 220 else {
                return try await body(conversation, greeting, Capabilities(ehlo: greeting, current: greeting, startTLSOffered: false))
            }
            let ehlo = try await conversation.command("EHLO \(self.options.ehloName)")
            // Without ESMTP, HELO lets the relay test go on; the EHLO answer is what is reported.
            let current = ehlo.code == 250 ? ehlo : try await conversation.command("HELO \(self.options.ehloName)")
            var capabilities = Capabilities(ehlo: ehlo, current: current, startTLSOffered: EHLOEditor.offers("STARTTLS", in: ehlo))
            if self.options.transport == .starttls, capabilities.startTLSOffered {
                let reply = try await conversation.command("STARTTLS")
                if reply.code == 220 {
                    do {
                        _ = try await conversation.startTLS()
                        capabilities.current = try await conversation.command("EHLO \(self.options.ehloName)")
                    } catch {
                        capabilities.tlsError = "\(error)"
                        return try await body(conversation, greeting, capabilities)
                    }
                } else {
                    capabilities.tlsError = "STARTTLS was answered \(reply.code) \(reply.lines.joined(separator: " "))"
                }
            }
            return try await body(conversation, greeting, capabilities)
        }
    }

    // MARK: - Banner, AUTH, TLS

    func capabilityFindings(greeting: SMTPReply, capabilities: Capabilities, conversation: SMTPConversation) -> [AuditFinding] {
        var findings: [AuditFinding] = []
        let greetingText = greeting.lines.joined(separator: " ")
        guard greeting.code == 220 else {
            findings.append(AuditFinding(
                "greeting", .fail, "the server greets with \(greeting.code) \(greetingText): it refuses this client (banned?)",
                fix: "run the audit from an address the server accepts"))
            return findings
        }
        // The banner and the EHLO domain.
        let ehloFirst = capabilities.ehlo.lines.first ?? ""
        let revealed = ProductBanner.recognise(greetingText) ?? ProductBanner.recognise(ehloFirst)
        switch revealed {
        case .some(let banner) where banner.version != nil:
            findings.append(AuditFinding(
                "banner", .fail, "the banner reveals \(banner.product) \(banner.version!): “\(greetingText)”",
                fix: Self.bannerFix(banner.product)))
        case .some(let banner):
            findings.append(AuditFinding(
                "banner", .warn, "the banner names the product, \(banner.product): “\(greetingText)”", fix: Self.bannerFix(banner.product)))
        case .none:
            findings.append(AuditFinding("banner", .pass, "the banner names no product or version: “\(greetingText)”"))
        }
        guard capabilities.ehlo.code == 250 else {
            findings.append(AuditFinding(
                "ehlo", .fail, "EHLO was answered \(capabilities.ehlo.code): the server speaks no ESMTP, so no AUTH and no STARTTLS",
                fix: "enable ESMTP"))
            return findings
        }
        // AUTH before TLS.
        let implicit = self.options.transport == .implicitTLS
        let clearMechanisms = implicit ? [] : EHLOEditor.offeredMechanismNames(capabilities.ehlo)
        if !clearMechanisms.isEmpty {
            let readable = clearMechanisms.filter { ["PLAIN", "LOGIN"].contains($0) }
            findings.append(AuditFinding(
                "auth-before-tls", readable.isEmpty ? .warn : .fail,
                "AUTH \(clearMechanisms.joined(separator: " ")) is offered before TLS"
                    + (readable.isEmpty ? ": a login could be tried without encryption" : ": \(readable.joined(separator: " and ")) send the password readable by anyone on the path"),
                fix: "offer AUTH only after STARTTLS (Postfix: smtpd_tls_auth_only = yes; Exim: auth_advertise_hosts = ${if eq{$tls_in_cipher}{}{}{*}}; SMTPGuard: auth.require_tls: true)"))
        } else if !implicit {
            findings.append(AuditFinding("auth-before-tls", .pass, "AUTH is not offered before TLS"))
        }
        // TLS.
        if self.options.transport == .plain {
            findings.append(AuditFinding("starttls", .info, "not tested (--plain)"))
        } else if !implicit && !capabilities.startTLSOffered {
            findings.append(AuditFinding(
                "starttls", .fail, "STARTTLS is not offered: mail and logins cross the network in clear text",
                fix: "configure a certificate and offer STARTTLS (Postfix: smtpd_tls_security_level = may)"))
        } else if let error = capabilities.tlsError {
            findings.append(AuditFinding("starttls", .fail, "TLS could not be established: \(error)", fix: "check the server's TLS configuration and certificate"))
        } else if let tls = conversation.tlsDetails {
            findings += self.tlsFindings(tls, implicit: implicit)
        }
        let mechanisms = EHLOEditor.offeredMechanismNames(capabilities.current)
        if mechanisms.isEmpty {
            findings.append(AuditFinding("auth", .info, "AUTH is not offered\(conversation.tlsDetails != nil ? " after TLS either" : "")"))
        } else {
            findings.append(AuditFinding(
                "auth", .info, "AUTH \(mechanisms.joined(separator: " ")) is offered\(conversation.tlsDetails != nil ? " over TLS" : "")"))
        }
        return findings
    }

    static func bannerFix(_ product: String) -> String {
        switch product {
        case "Postfix": "set smtpd_banner = $myhostname ESMTP in main.cf"
        case "Exim": "set smtp_banner = $smtp_active_hostname ESMTP in the main configuration"
        case "Sendmail": "set O SmtpGreetingMessage=$j in sendmail.cf (confSMTP_LOGIN_MSG in the .mc file)"
        case "Microsoft Exchange": "set a neutral banner with Set-ReceiveConnector -Banner \"220 mail.example.com\""
        default: "configure a greeting that names only the host"
        }
    }

    func tlsFindings(_ tls: TLSDetails, implicit: Bool) -> [AuditFinding] {
        var findings: [AuditFinding] = []
        let how = implicit ? "implicit TLS" : "STARTTLS"
        findings.append(
            tls.versionIsCurrent
                ? AuditFinding("tls-version", .pass, "\(how) negotiates \(tls.version)")
                : AuditFinding(
                    "tls-version", .fail, "\(how) negotiates \(tls.version), which is broken and retired (RFC 8996)",
                    fix: "allow TLS 1.2 and 1.3 only (Postfix: smtpd_tls_protocols = >=TLSv1.2)"))
        if let problem = tls.trustProblem {
            findings.append(AuditFinding(
                "certificate-trust", .warn, "the certificate (issued by \(tls.issuer)) is not trusted: \(problem)",
                fix: "use a certificate from a public CA (Let's Encrypt …) with its intermediate chain; --ca-file names a private CA"))
        } else {
            findings.append(AuditFinding("certificate-trust", .pass, "the certificate chain is trusted (issued by \(tls.issuer))"))
        }
        if tls.matches(host: self.options.host) {
            findings.append(AuditFinding("certificate-name", .pass, "the certificate is for \(self.options.host)"))
        } else {
            findings.append(AuditFinding(
                "certificate-name", .warn, "the certificate is for \(tls.names.joined(separator: ", ")), not \(self.options.host)",
                fix: "use a certificate that names the host clients connect to"))
        }
        let now = Int(Date().timeIntervalSince1970)
        let expiry = Date(timeIntervalSince1970: TimeInterval(tls.notAfter)).formatted(.iso8601.year().month().day())
        let days = (tls.notAfter - now) / 86_400
        if tls.notAfter < now {
            findings.append(AuditFinding("certificate-expiry", .fail, "the certificate expired on \(expiry)", fix: "renew the certificate"))
        } else if tls.notBefore > now {
            findings.append(AuditFinding("certificate-expiry", .fail, "the certificate is not valid yet", fix: "check the server's clock and the certificate"))
        } else if days < 14 {
            findings.append(AuditFinding("certificate-expiry", .warn, "the certificate expires in \(days) days (\(expiry))", fix: "renew the certificate"))
        } else {
            findings.append(AuditFinding("certificate-expiry", .pass, "the certificate is valid until \(expiry) (\(days) days)"))
        }
        return findings
    }

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
    private func attempts(
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
