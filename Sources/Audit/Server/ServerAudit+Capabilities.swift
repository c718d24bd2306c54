// ServerAudit's findings on what the server says of itself: its banner, the AUTH it offers
// (and where: in clear text or only inside TLS) and its TLS (version, certificate).

import Foundation
import GuardCore
import SMTPWire

extension ServerAudit {
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
}
