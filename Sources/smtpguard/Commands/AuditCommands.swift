// `smtpguard audit HOST[:PORT]` and `smtpguard dnsbl IP…`: a mail server's exposure, checked
// from outside as the seed articles tell an administrator to check it by hand.
//
// Exit status, as for every audit command: 0 pass, 1 warnings, 2 failures, 3 could not run.
// The reports are Audit's (ServerAuditReport's text and JSON, BlocklistReport).

import ArgumentParser
import Audit
import Foundation
import GuardCore

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check a mail server from outside: banner, AUTH before TLS, TLS, open relay, guest logins, tarpit.",
        discussion: """
            Connects to HOST like a mail client (port 25 by default; STARTTLS when offered, implicit \
            TLS on port 465 or with --tls) and reports each check as pass, warn or fail, with the fix:

            - banner: the greeting or EHLO names the product (warn) or its version (fail).
            - auth-before-tls: AUTH offered before TLS (PLAIN or LOGIN in clear text: fail).
            - starttls, tls-version: STARTTLS offered and working, with TLS 1.2 or 1.3.
            - certificate-trust, -name, -expiry: the chain is trusted (system roots or \
            --ca-file), names HOST, and is not expiring.
            - open-relay: an outside recipient accepted from an outside sender without AUTH (the \
            test stops after RCPT with RSET: nothing is ever sent).
            - guest-login: guest/guest, guest and anonymous with a blank password, AUTH ANONYMOUS.
            - default-credentials: only with --try-default-credentials, the seed lists' logins \
            (admin/admin, test/test123 …), at most --max-attempts, one per --attempt-interval, \
            stopping at the first success.
            - lockout: failed logins (as a username that cannot exist) are timed; slowed (a \
            tarpit) or blocked (a lockout) passes, answered at full speed fails.

            Only HOST is contacted. Logins go over TLS whenever the server offers it. Passwords are \
            never printed: an accepted login is reported with its rule ("the username as password").

            Exit status: 0 all passed, 1 warnings, 2 failures, 3 the audit could not run.
            """
    )

    @Argument(help: ArgumentHelp("The server: a name or address, with :PORT (default 25; [IPv6]:PORT).", valueName: "host[:port]"))
    var target: String

    @Flag(name: .long, help: "TLS from the first byte (the default on port 465).")
    var tls = false

    @Flag(name: .long, help: "Plain text only: do not try STARTTLS.")
    var plain = false

    @Option(name: .long, help: ArgumentHelp("Trust the CA certificates of this PEM file instead of the system's.", valueName: "file"))
    var caFile: String?

    @Option(name: .long, help: ArgumentHelp("Connect from this local address (default: the system's choice).", valueName: "address"))
    var source: String?

    @Option(name: .long, help: ArgumentHelp("The name to send in EHLO (default: this machine's host name).", valueName: "name"))
    var ehlo: String?

    @Flag(name: .long, help: "Also try the seed lists' default logins (admin/admin …). Only on your own server.")
    var tryDefaultCredentials = false

    @Option(name: .long, help: "At most this many default logins (1-50).")
    var maxAttempts = 12

    @Option(name: .long, help: ArgumentHelp("Time between two default logins.", valueName: "duration"))
    var attemptInterval = "1s"

    @Option(name: .long, help: "Failed logins sent to see whether they are slowed or blocked (2-20).")
    var lockoutProbes = 6

    @Option(name: .long, help: ArgumentHelp("The longest wait for a reply, a connection or a TLS handshake.", valueName: "duration"))
    var timeout = "10s"

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        guard (1...50).contains(self.maxAttempts) else { throw ValidationError("--max-attempts: expected 1 to 50") }
        guard (2...20).contains(self.lockoutProbes) else { throw ValidationError("--lockout-probes: expected 2 to 20") }
        guard let interval = parseDuration(self.attemptInterval), interval >= .milliseconds(100), interval <= .seconds(3600) else {
            throw ValidationError("--attempt-interval: expected a duration from 100ms to 1h, such as 1s")
        }
        _ = interval
        guard let timeout = parseDuration(self.timeout), timeout >= .seconds(1), timeout <= .seconds(3600) else {
            throw ValidationError("--timeout: expected a duration from 1s to 1h, such as 10s")
        }
        _ = timeout
        guard !(self.tls && self.plain) else { throw ValidationError("--tls and --plain exclude each other") }
        if let source, IPAddress(source) == nil { throw ValidationError("--source \(source): not an IPv4 or IPv6 address") }
        guard Self.split(self.target) != nil else { throw ValidationError("\(self.target): expected HOST, HOST:PORT or [IPv6]:PORT") }
    }

    /// HOST[:PORT] into its parts (a bare IPv6 address, bracketed or not, is a host).
    static func split(_ target: String) -> (host: String, port: Int?)? {
        let bare = target.hasPrefix("[") && target.hasSuffix("]") ? String(target.dropFirst().dropLast()) : target
        if IPAddress(bare) != nil { return (bare, nil) }
        if let hostPort = HostPort(target) { return hostPort.port > 0 ? (hostPort.host, hostPort.port) : nil }
        guard !target.isEmpty, !target.contains(":"), !target.contains(where: { $0 == " " || $0 == "/" }) else { return nil }
        return (target, nil)
    }

    func run() async throws {
        try await AuditExit.run {
            let (host, givenPort) = Self.split(self.target)!
            let port = givenPort ?? (self.tls ? 465 : 25)
            let transport: ProbeTransport = self.plain ? .plain : (self.tls || port == 465) ? .implicitTLS : .starttls
            var options = ServerAuditOptions(
                host: host, port: port, transport: transport, ehloName: self.ehlo ?? Self.localName())
            options.caFile = self.caFile
            options.source = self.source
            options.timeout = parseDuration(self.timeout)!
            options.tryDefaultCredentials = self.tryDefaultCredentials
            options.maxCredentialAttempts = self.maxAttempts
            options.credentialInterval = parseDuration(self.attemptInterval)!
            options.lockoutProbes = self.lockoutProbes
            let terminal = isatty(STDERR_FILENO) == 1
            let audit = ServerAudit(options: options) { step in
                if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K\(step) …".utf8)) }
            }
            let report: ServerAuditReport
            do {
                report = try await audit.run()
            } catch let error as ProbeError {
                if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                throw AuditFailure("\(host) port \(port): \(error.description)")
            }
            if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            print(self.json ? report.json() : report.text())
            return report.exitStatus
        }
    }

    /// This machine's name when it looks like a domain, else a name that says what it is.
    static func localName() -> String {
        let name = ProcessInfo.processInfo.hostName
        return name.contains(".") && !name.hasSuffix(".") ? name : "smtpguard-audit.localdomain"
    }
}

struct DNSBLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dnsbl",
        abstract: "Look addresses up in DNS blocklists: listed, not listed or lookup error, per list.",
        discussion: """
            Each address (IPv4 or IPv6) is looked up in each zone by its reversed form \
            (4.3.2.1.zen.spamhaus.org; IPv6 as 32 nibbles). An answer in 127.0.0.0/8 means listed: \
            the codes are shown with their meaning where the list documents it, and the TXT record's \
            reason. No such name means not listed. A resolver error, a timeout, an answer outside \
            127/8 or Spamhaus's 127.255.255.x refusals (for queries through public resolvers) are \
            lookup errors, never a verdict.

            Default zones: \(BlocklistZone.defaults.map(\.zone).joined(separator: ", ")). \
            The resolver is the first nameserver of /etc/resolv.conf unless --resolver names one.

            Exit status: 0 listed nowhere, 1 lookup errors only, 2 listed somewhere, 3 could not run.
            """
    )

    @Argument(help: ArgumentHelp("The addresses to check.", valueName: "ip"))
    var addresses: [String]

    @Option(name: .customLong("zone"), help: ArgumentHelp("A blocklist zone; repeat for several (replaces the default list).", valueName: "zone"))
    var zones: [String] = []

    @Option(name: .long, help: ArgumentHelp("The DNS resolver: ADDRESS, ADDRESS:PORT or [IPv6]:PORT (default: /etc/resolv.conf).", valueName: "address"))
    var resolver: String?

    @Option(name: .long, help: ArgumentHelp("How long to wait for one answer (it is asked twice).", valueName: "duration"))
    var timeout = "3s"

    @Flag(name: .long, help: "Print the results as JSON.")
    var json = false

    func validate() throws {
        guard !self.addresses.isEmpty else { throw ValidationError("name at least one address") }
        for address in self.addresses where IPAddress(address) == nil { throw ValidationError("\(address): not an IPv4 or IPv6 address") }
        for zone in self.zones where !Self.isZone(zone) { throw ValidationError("--zone \(zone): not a DNS zone name") }
        if let resolver, DNSResolver(parsing: resolver) == nil {
            throw ValidationError("--resolver \(resolver): expected ADDRESS, ADDRESS:PORT or [IPv6]:PORT")
        }
        guard let timeout = parseDuration(self.timeout), timeout >= .milliseconds(100), timeout <= .seconds(60) else {
            throw ValidationError("--timeout: expected a duration from 100ms to 60s, such as 3s")
        }
        _ = timeout
    }

    static func isZone(_ text: String) -> Bool {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && text.utf8.count <= 180  // room for an IPv6 address's 64-character reversed name in 253
            && labels.allSatisfy { label in !label.isEmpty && label.count <= 63 && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") } }
    }

    func run() async throws {
        try await AuditExit.run {
            let resolver = try self.resolver.map { DNSResolver(parsing: $0)! } ?? Self.systemResolver()
            let zones = self.zones.isEmpty ? BlocklistZone.defaults : self.zones.map { zone in
                BlocklistZone.defaults.first { $0.zone == zone.lowercased() } ?? BlocklistZone(zone.lowercased())
            }
            let client = DNSClient(resolver: resolver, timeout: parseDuration(self.timeout)!)
            let answers = await Blocklist.check(self.addresses.map { IPAddress($0)! }, zones: zones, client: client)
            let report = BlocklistReport(answers: answers, resolver: resolver)
            print(self.json ? report.json() : report.text())
            return report.exitStatus
        }
    }

    static func systemResolver() throws -> DNSResolver {
        do { return try DNSResolver.system() } catch let error as ProbeError { throw AuditFailure(error.description) }
    }
}
