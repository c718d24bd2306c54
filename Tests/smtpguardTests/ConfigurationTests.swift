import Foundation
import GuardCore
import Testing

@testable import smtpguard

@Suite("Configuration files")
struct ConfigurationTests {
    @Test("the printed defaults load back to the defaults")
    func defaultsRoundTrip() throws {
        let text = GuardConfiguration.renderDefaults()
        var expected = GuardConfiguration()
        expected.proxy.hostname = ""
        #expect(try ConfigurationLoader.load(text: text, file: "defaults.yaml") == expected)
        // Every key is in the printed file, with a comment above it.
        for key in GuardConfiguration.keys {
            let name = String(key.path.split(separator: ".").last!)
            #expect(text.contains(" \(name): ") || text.contains("\n\(name): "), "\(key.path)")
        }
    }

    @Test("a file with mistakes names every key and line")
    func errors() {
        let text = """
            listen:
              - 127.0.0.1:2525
              - nonsense
            backend:
              address: 127.0.0.1:25
              identiy: xclient
            guard:
              short_window: 10x
              limits:
                ip_failures_short: 0
              trusted_networks: [192.0.2.0/24, 300.1.1.1/8]
            smtp:
              failure_reply: "235 ok"
              ban_reply: 500
            """
        do {
            _ = try ConfigurationLoader.load(text: text, file: "bad.yaml")
            Issue.record("a bad file loaded")
        } catch let failure as ConfigurationLoader.Failure {
            let lines = failure.issues.map(\.description)
            #expect(lines.contains { $0.hasPrefix("bad.yaml:1: listen:") && $0.contains("nonsense") })
            #expect(lines.contains("bad.yaml:6: backend.identiy: unknown key (did you mean backend.identity?)"))
            #expect(lines.contains { $0.hasPrefix("bad.yaml:8: guard.short_window:") })
            #expect(lines.contains { $0.hasPrefix("bad.yaml:10: guard.limits.ip_failures_short: 0 is out of range") })
            #expect(lines.contains { $0.hasPrefix("bad.yaml:11: guard.trusted_networks:") && $0.contains("300.1.1.1/8") })
            #expect(lines.contains { $0.hasPrefix("bad.yaml:14: smtp.ban_reply:") })
            #expect(failure.issues.count == 6)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("checks between keys run once every key is valid")
    func crossKey() {
        let text = "guard:\n  short_window: 2h\n  long_window: 1h\nsmtp:\n  failure_reply: \"454 4.7.0 no\"\n"
        #expect(throws: ConfigurationLoader.Failure.self) { try ConfigurationLoader.load(text: text, file: "x.yaml") }
        do {
            _ = try ConfigurationLoader.load(text: text, file: "x.yaml")
        } catch let failure as ConfigurationLoader.Failure {
            #expect(failure.issues.map(\.description).contains("x.yaml:3: guard.long_window: must be at least guard.short_window (2h)"))
            #expect(failure.issues.map(\.description).contains("x.yaml:5: smtp.failure_reply: must be a permanent (5xx) reply"))
        } catch {}
    }

    @Test("listeners of one configuration that would take the same address are named by both keys; 0.0.0.0:P beside [::]:P is not a clash")
    func listenerClashes() throws {
        func problems(_ text: String) -> [String] {
            do {
                _ = try ConfigurationLoader.load(text: text, file: "c.yaml")
                return []
            } catch let failure as ConfigurationLoader.Failure {
                return failure.issues.map(\.description)
            } catch {
                return ["\(error)"]
            }
        }
        #expect(problems("listen: [\"0.0.0.0:587\", \"[::]:587\"]\nlisten_tls: [\"0.0.0.0:465\", \"[::]:465\"]\ntls: {certificate: c, key: k}\n") == [])
        let dovecot = problems("dovecot_policy:\n  listen: 127.0.0.1:8025\n  api_header: \"X-API-Key: 3f9c1d2e8a7b6c5d\"\n")
        #expect(dovecot.count == 1)
        #expect(dovecot.first?.hasPrefix("c.yaml:2: dovecot_policy.listen: 127.0.0.1:8025 and admin.listen 127.0.0.1:8025 are the same address") == true, "\(dovecot)")
        // A wildcard takes every address of its family, on IPv6 too.
        #expect(problems("admin: {listen: \"[::1]:8030\"}\nfirewall: {banlist_listen: \"[::]:8030\"}\n").first?.contains("firewall.banlist_listen: [::]:8030 and admin.listen [::1]:8030 are overlapping addresses") == true)
        #expect(problems("admin: {listen: \"0.0.0.0:8030\"}\nfirewall: {banlist_listen: \"127.0.0.1:8030\"}\n").count == 1)
        // Different families, different ports, port 0, or servers no command starts together: no clash.
        #expect(problems("admin: {listen: \"0.0.0.0:8030\"}\nfirewall: {banlist_listen: \"[::]:8030\"}\n") == [])
        #expect(problems("listen: [\"127.0.0.1:8030\"]\nfirewall: {banlist_listen: \"127.0.0.1:8030\"}\n") == [], "run does not serve the ban list, watch not the proxy")
        #expect(problems("listen: [\"127.0.0.1:0\"]\nadmin: {listen: \"127.0.0.1:0\"}\n") == [])
        #expect(problems("postfix_policy: {listen: [\"unix:/run/p.sock\", \"unix:/run/p.sock\"]}\n").first?.contains("Give each its own path") == true)
    }

    @Test("secrets left as the examples' placeholders are refused, by key, without showing them")
    func placeholderSecrets() throws {
        let text = "alerts:\n  webhooks: [\"https://hooks.example/x\"]\n  webhook_secret: change-me-to-a-long-random-secret\nadmin:\n  token: change-me-admin-token-000000\n"
        do {
            _ = try ConfigurationLoader.load(text: text, file: "p.yaml")
            Issue.record("placeholders accepted")
        } catch let failure as ConfigurationLoader.Failure {
            let lines = failure.issues.map(\.description)
            #expect(lines.count == 2, "\(lines)")
            #expect(lines.contains { $0.hasPrefix("p.yaml:3: alerts.webhook_secret: is still the example's placeholder") })
            #expect(lines.contains { $0.hasPrefix("p.yaml:5: admin.token: is still the example's placeholder") })
            #expect(!lines.joined().contains("change-me-to") && !lines.joined().contains("change-me-admin"))
        }
        let real = "alerts:\n  webhooks: [\"https://hooks.example/x\"]\n  webhook_secret: 9b1f0c4e7d2a8f3b6e5c1d0a\n"
        #expect(throws: Never.self) { try ConfigurationLoader.load(text: real, file: "p.yaml") }
    }

    @Test("TLS settings that cannot work together are named")
    func tlsCrossKey() {
        let text = """
            listen_tls: ["0.0.0.0:465"]
            tls:
              key: /etc/ssl/private/mail.key
            backend:
              identity: proxy-v2
              tls: tls
            """
        do {
            _ = try ConfigurationLoader.load(text: text, file: "t.yaml")
            Issue.record("accepted")
        } catch let failure as ConfigurationLoader.Failure {
            let lines = failure.issues.map(\.description)
            #expect(lines.contains("t.yaml:3: tls.key: needs tls.certificate"), "\(lines)")
            #expect(lines.contains { $0.hasPrefix("t.yaml:1: listen_tls: implicit TLS listeners need tls.certificate") }, "\(lines)")
            #expect(lines.contains { $0.hasPrefix("t.yaml:5: backend.identity: a PROXY header cannot be sent") }, "\(lines)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("broken YAML, a scalar where a section belongs, a duplicate key")
    func structure() {
        for (text, expected) in [
            ("backend: [unclosed\n", "x.yaml:2: not valid YAML"),
            ("smtp: 5\n", "x.yaml:1: smtp: is a section: expected keys under it"),
            ("events:\n  path: a\n  path: b\n", "x.yaml:2: key given twice in the mapping that starts here: path"),
            ("- a\n- b\n", "x.yaml:1: the top level must be a mapping of keys"),
        ] {
            do {
                _ = try ConfigurationLoader.load(text: text, file: "x.yaml")
                Issue.record("loaded: \(text)")
            } catch let failure as ConfigurationLoader.Failure {
                #expect(failure.issues.first?.description.hasPrefix(expected) == true, "\(failure.issues)")
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
    }

    @Test("an empty file means the defaults; a missing file is a clear error")
    func emptyAndMissing() throws {
        #expect(try ConfigurationLoader.load(text: "", file: "empty.yaml") == GuardConfiguration())
        do {
            _ = try ConfigurationLoader.load(path: "/nonexistent/smtpguard.yaml")
            Issue.record("loaded a missing file")
        } catch let failure as ConfigurationLoader.Failure {
            #expect(failure.description.hasPrefix("/nonexistent/smtpguard.yaml: cannot read the file"))
        }
    }

    @Test("values in every documented form")
    func values() throws {
        let text = """
            listen: ["127.0.0.1:2525", "[::1]:2525"]
            backend:
              address: "[::1]:25"
              identity: proxy-v2
            smtp:
              auth_mechanisms: [plain, login]
              auth_networks: 10.0.0.0/8, 192.0.2.0/24
            guard:
              trusted_networks:
                - 198.51.100.0/24
              bans:
                jitter: 5%
                ip: 1h30m
              credentials:
                denied_usernames: []
            events:
              path:
            """
        let config = try ConfigurationLoader.load(text: text, file: "ok.yaml")
        #expect(config.proxy.listen.count == 2)
        #expect(config.proxy.backend == HostPort(host: "::1", port: 25))
        #expect(config.proxy.identity == .proxyV2)
        #expect(config.proxy.mechanisms == [.plain, .login])
        #expect(config.proxy.authNetworks.networks.count == 2)
        #expect(config.policy.trustedNetworks.contains(IPAddress("198.51.100.7")!))
        #expect(config.policy.bans.jitter == 0.05)
        #expect(config.policy.bans.ip == .seconds(5400))
        #expect(config.policy.credentials.deniedUsernames.isEmpty)
        #expect(config.events.path == "")
    }

    @Test("the README's configuration reference is the one the code prints")
    func readmeReference() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        #expect(text.contains(GuardConfiguration.renderReference()), "README.md: paste the output of `smtpguard config reference`")
    }
}
