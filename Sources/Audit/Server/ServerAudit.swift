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
}
