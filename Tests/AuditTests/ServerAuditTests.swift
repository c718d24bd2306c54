// The pure parts of `smtpguard audit` and `smtpguard dnsbl`: banners, certificate names,
// the DNS wire format and what a blocklist answer means. The network parts are tested
// against the lab's real Postfix + Dovecot and a DNS server on loopback (tests/integration/audit.sh).

import GuardCore
import SMTPWire
import Testing

@testable import Audit

@Suite struct ProductBannerTests {
    @Test(arguments: [
        ("mx.example.com Microsoft ESMTP MAIL Service, Version: 10.0.17763.1697 ready at Sat, 22 Nov 2026 10:11:12 +0000", "Microsoft Exchange", "10.0.17763.1697"),
        ("mail.example.com ESMTP Postfix (Debian/GNU)", "Postfix", nil),
        ("mail.example.com ESMTP Postfix 3.7.11", "Postfix", "3.7.11"),
        ("mx.example.org ESMTP Exim 4.96 Sat, 22 Nov 2026 10:11:12 +0100", "Exim", "4.96"),
        ("host.example.net ESMTP Sendmail 8.15.2/8.15.2; Sat, 22 Nov 2026 10:11:12 +0100", "Sendmail", "8.15.2"),
        ("mail.example.com ESMTP MDaemon 23.0.1; Sat, 22 Nov 2026", "MDaemon", "23.0.1"),
        ("[127.0.0.1] ESMTP Postfix", "Postfix", nil),
    ] as [(String, String, String?)])
    func recognised(_ greeting: String, _ product: String, _ version: String?) {
        #expect(ProductBanner.recognise(greeting) == ProductBanner(product: product, version: version))
    }

    @Test(arguments: [
        "mail.example.com ESMTP",
        "smtpguard.test ESMTP",  // the host's own name is not a product
        "postfix.example.com ESMTP ready",
        "mx1.exim-hosting.example ESMTP",
        "mail.example.com ESMTP service ready at 10.0.0.1",
        "mail.example.com",
    ])
    func nothingRevealed(_ greeting: String) {
        #expect(ProductBanner.recognise(greeting) == nil)
    }
}

@Suite struct CertificateNameTests {
    func details(_ names: [String]) -> TLSDetails {
        TLSDetails(version: "TLS 1.3", versionIsCurrent: true, trustProblem: nil, names: names, issuer: "CN=test", notBefore: 0, notAfter: 0)
    }

    @Test func exactWildcardAndAddress() {
        let tls = self.details(["mail.example.com", "*.example.net", "127.0.0.1", "::1"])
        #expect(tls.matches(host: "mail.example.com"))
        #expect(tls.matches(host: "MAIL.Example.com"))
        #expect(tls.matches(host: "mail.example.com."))  // a fully qualified name with its root dot
        #expect(tls.matches(host: "mx.example.net"))
        #expect(!tls.matches(host: "a.b.example.net"))  // a wildcard covers one label
        #expect(!tls.matches(host: "example.net"))
        #expect(tls.matches(host: "127.0.0.1"))
        #expect(tls.matches(host: "0:0::1"))
        #expect(!tls.matches(host: "127.0.0.2"))
        #expect(!tls.matches(host: "other.example.com"))
    }
}

@Suite struct ServerAuditParsingTests {
    @Test func mechanismsFromEHLO() {
        let ehlo = SMTPReply(code: 250, lines: ["mx.example.com", "PIPELINING", "AUTH PLAIN LOGIN", "AUTH=LOGIN CRAM-MD5", "STARTTLS"])
        #expect(EHLOEditor.offeredMechanismNames(ehlo) == ["PLAIN", "LOGIN", "CRAM-MD5"])
        #expect(EHLOEditor.offeredMechanismNames(SMTPReply(code: 250, lines: ["mx", "SIZE 1000"])).isEmpty)
    }

    @Test func defaultLoginsComeFromTheSeedLists() {
        let logins = ServerAudit.defaultLogins
        #expect(logins.first.map { [$0.username, $0.password] } == ["admin", "admin"])
        for login in logins { #expect(DefaultCredentials.isDefaultPassword(login.password, username: login.username)) }
        #expect(Set(logins.map { "\($0.username)/\($0.password)" }).count == logins.count)
    }

    @Test func exitStatus() {
        #expect([AuditFinding("a", .pass, ""), AuditFinding("b", .info, "")].exitStatus == 0)
        #expect([AuditFinding("a", .pass, ""), AuditFinding("b", .warn, "", fix: "x")].exitStatus == 1)
        #expect([AuditFinding("a", .fail, "", fix: "x"), AuditFinding("b", .warn, "", fix: "x")].exitStatus == 2)
        #expect(AuditFinding("a", .pass, "", fix: "ignored").fix == nil)
    }
}

@Suite struct DNSBLTests {
    @Test func reversedNames() {
        #expect(Blocklist.reversedName(IPAddress("192.0.2.99")!) == "99.2.0.192")
        #expect(Blocklist.reversedName(IPAddress("2001:db8::1")!) == "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2")
    }

    @Test func queryWireForm() {
        let query = DNSQuery(id: 0x1234, name: "2.0.0.127.zen.spamhaus.org", type: .txt).encoded
        #expect(Array(query.prefix(12)) == [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])
        #expect(Array(query.suffix(5)) == [0, 0, 16, 0, 1])
        #expect(query[12] == 1 && query[13] == UInt8(ascii: "2"))
        #expect(query.count == 12 + "2.0.0.127.zen.spamhaus.org".utf8.count + 2 + 4)
    }

    /// A reply with a compressed name pointing back at the question, two A records and a TXT.
    static func reply(id: UInt16, rcode: UInt8, addresses: [[UInt8]], txt: [String] = []) -> [UInt8] {
        let query = DNSQuery(id: id, name: "2.0.0.127.bl.example", type: .a).encoded
        var bytes = query
        bytes[2] = 0x81
        bytes[3] = 0x80 | rcode
        bytes[7] = UInt8(addresses.count + txt.count)
        for address in addresses { bytes += [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4] + address }
        for text in txt {
            let utf8 = Array(text.utf8)
            bytes += [0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, UInt8(utf8.count + 1), UInt8(utf8.count)] + utf8
        }
        return bytes
    }

    @Test func parsesAnswers() throws {
        let response = try DNSResponse(parsing: Self.reply(id: 7, rcode: 0, addresses: [[127, 0, 0, 2], [127, 0, 0, 4]], txt: ["Listed: see https://example/"]))
        #expect(response.id == 7 && response.rcode == 0 && !response.truncated)
        #expect(response.addresses == ["127.0.0.2", "127.0.0.4"])
        #expect(response.texts == ["Listed: see https://example/"])
        #expect(try DNSResponse(parsing: Self.reply(id: 9, rcode: 3, addresses: [])).rcode == 3)
        #expect(throws: DNSResponse.ParseError.self) { try DNSResponse(parsing: Array(Self.reply(id: 1, rcode: 0, addresses: [[127, 0, 0, 2]]).dropLast(2))) }
        #expect(throws: DNSResponse.ParseError.self) { try DNSResponse(parsing: [0, 1, 0]) }
    }

    @Test func interpretation() {
        let zen = BlocklistZone.defaults[0]
        func answer(_ rcode: Int, _ addresses: [String], txt: [String] = []) -> BlocklistResult {
            Blocklist.interpret(
                DNSResponse(id: 1, rcode: rcode, truncated: false, addresses: addresses),
                txt: DNSResponse(id: 2, rcode: 0, truncated: false, texts: txt), zone: zen)
        }
        #expect(answer(3, []) == .notListed)
        #expect(answer(0, []) == .notListed)
        #expect(answer(0, ["127.0.0.2", "127.0.0.10"], txt: ["https://check.spamhaus.org/"])
            == .listed(codes: ["127.0.0.2", "127.0.0.10"], meanings: ["SBL: a known spam source", "PBL: end-user address (ISP policy)"], reason: "https://check.spamhaus.org/"))
        guard case .error(let refusal) = answer(0, ["127.255.255.254"]) else { Issue.record("a refusal is an error"); return }
        #expect(refusal.contains("public or open resolver"))
        guard case .error(let hijack) = answer(0, ["198.51.100.7"]) else { Issue.record("an answer outside 127/8 is an error"); return }
        #expect(hijack.contains("198.51.100.7"))
        guard case .error = answer(2, []) else { Issue.record("SERVFAIL is an error"); return }
        guard case .error = answer(5, []) else { Issue.record("REFUSED is an error"); return }
    }

    @Test func resolverAddresses() {
        #expect(DNSResolver(parsing: "127.0.0.1") == DNSResolver(host: "127.0.0.1", port: 53))
        #expect(DNSResolver(parsing: "127.0.0.1:5353") == DNSResolver(host: "127.0.0.1", port: 5353))
        #expect(DNSResolver(parsing: "[::1]:5353") == DNSResolver(host: "::1", port: 5353))
        #expect(DNSResolver(parsing: "::1") == DNSResolver(host: "::1", port: 53))
        #expect(DNSResolver(parsing: "resolver.example") == nil)
        #expect(DNSResolver(parsing: "127.0.0.1:0") == nil)
    }
}
