// The SQLite store on real files in a temporary folder.

import Foundation
import GuardCore
import Testing

@testable import GuardStore

@Suite("SQLite state store")
struct SQLiteStoreTests {
    static func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("smtpguard-store-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test("bans, attempts and alerts come back after reopening; lifted and ended bans do not")
    func roundTrip() async throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state.db").path
        let now = Timestamp(seconds: 1_800_000_000)
        let banned = Ban(key: .ip(IPAddress("203.0.113.9")!), since: now, until: now + .seconds(900), reason: .ipFailures, offense: 2)
        let lifted = Ban(key: .username("bob"), since: now, until: now + .seconds(900), reason: .manual, offense: 1, exemptKnownPlaces: true)
        let ended = Ban(key: .prefix(IPNetwork("198.51.100.0/24")!), since: now + .seconds(-7200), until: now + .seconds(-3600), reason: .prefixFailures, offense: 1)
        let attempt = AuthAttempt(
            time: now, client: IPAddress("203.0.113.9")!, clientPort: 40000, username: "alice", mechanism: .login, tls: true,
            tlsVersion: "TLSv1.3", outcome: .failure, source: .proxy, credential: CredentialEvidence(passwordHash: 7, isDefaultPassword: true))
        do {
            let store = try await SQLiteStateStore.open(path: path)
            try await store.write([
                .attempt(AttemptRecord(attempt: attempt, session: "s1", replyCode: 535, decision: Decision(verdict: .refuse))),
                .ban(banned), .ban(lifted), .ban(ended), .unban(lifted, time: now + .seconds(10), lifted: true),
                .alert(Alert(kind: .weakCredentialAccepted, severity: .critical, time: now, username: "admin", client: nil, message: "m")),
            ])
            await store.close()
        }
        let store = try await SQLiteStateStore.open(path: path)
        let state = try await store.load(now: now + .seconds(20), since: now + .seconds(-60), successesSince: now + .seconds(-60), bansSince: now + .seconds(-86_400))
        #expect(state.bans == [banned])
        #expect(Set(state.banHistory) == Set([banned, lifted, ended]))
        #expect(state.attempts.count == 1)
        let back = try #require(state.attempts.first)
        #expect(back.client == attempt.client && back.username == "alice" && back.outcome == .failure && back.mechanism == .login)
        #expect(back.tlsVersion == "TLSv1.3" && back.credential.isDefaultPassword && back.credential.passwordHash == nil)
        #expect(try await store.schemaVersion == SQLiteStateStore.migrations.count)
        await store.close()
    }

    @Test("trusted networks and the last alerts are kept; a state file of schema 1 is brought up to 2 with its bans intact")
    func trustedAndAlertsAndUpgrade() async throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("state.db").path
        let now = Timestamp(seconds: 1_800_000_000)
        let ban = Ban(key: .ip(IPAddress("203.0.113.9")!), since: now, until: now + .seconds(900), reason: .ipFailures, offense: 1)
        // A file as the previous version left it: schema 1, one ban.
        do {
            let old = try await SQLiteStateStore.openAtVersion(path: path, version: 1)
            try await old.write([.ban(ban)])
            #expect(try await old.schemaVersion == 1)
            await old.close()
        }
        let store = try await SQLiteStateStore.open(path: path)
        #expect(try await store.schemaVersion == 2)
        #expect(try await store.load(now: now, since: now, successesSince: now, bansSince: now).bans == [ban])
        let office = TrustedNetwork(network: IPNetwork("192.0.2.0/24")!, comment: "office", added: now)
        try await store.addTrustedNetwork(office)
        try await store.addTrustedNetwork(TrustedNetwork(network: IPNetwork("10.0.0.0/8")!, comment: "vpn", added: now + .seconds(1)))
        try await store.addTrustedNetwork(TrustedNetwork(network: IPNetwork("192.0.2.0/24")!, comment: "office, 2nd floor", added: now + .seconds(2)))
        #expect(try await store.trustedNetworks().map(\.comment) == ["office, 2nd floor", "vpn"])
        #expect(try await store.removeTrustedNetwork(IPNetwork("10.0.0.0/8")!))
        #expect(try await !store.removeTrustedNetwork(IPNetwork("10.0.0.0/8")!))
        for i in 0..<5 {
            try await store.write([.alert(Alert(kind: .distributedAttack, severity: .warning, time: now + .seconds(Int64(i)), username: "u\(i)", client: i == 4 ? IPAddress("192.0.2.4") : nil, message: "m\(i)"))])
        }
        let alerts = try await store.recentAlerts(limit: 3)
        #expect(alerts.map(\.message) == ["m4", "m3", "m2"])
        #expect(alerts.first?.client == IPAddress("192.0.2.4"))
        await store.close()
    }

    @Test("a file that is not a database, or cannot be written, is an error naming it")
    func badFiles() async throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let garbage = folder.appendingPathComponent("garbage.db").path
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: garbage))
        do {
            _ = try await SQLiteStateStore.open(path: garbage)
            Issue.record("a garbage file was opened")
        } catch {
            #expect("\(error)".contains("garbage.db") && "\(error)".contains("not an SQLite database"), "\(error)")
        }
        let missingFolder = folder.appendingPathComponent("no/such/folder/state.db").path
        do {
            _ = try await SQLiteStateStore.open(path: missingFolder)
            Issue.record("a state file in a missing folder was opened")
        } catch {
            #expect("\(error)".contains("no/such/folder/state.db"), "\(error)")
        }
    }
}

@Suite("cluster notifications")
struct ClusterMessageTests {
    @Test("a ban, a lift and a trusted-network change go out as text and come back the same")
    func roundTrip() throws {
        let now = Timestamp(seconds: 1_800_000_000)
        let ban = Ban(key: .prefix(IPNetwork("198.51.100.0/24")!), since: now, until: now + .seconds(900), reason: .prefixFailures, offense: 3, exemptKnownPlaces: true)
        let messages: [ClusterMessage] = [
            .ban(ban, guard: "mx1"), .lift(.username("bob"), guard: "mx2"), .lift(.ip(IPAddress("2001:db8::1")!), guard: "mx2"), .trustedNetworks(guard: "mx3"),
        ]
        for message in messages {
            #expect(ClusterMessage(text: message.text) == message)
        }
        #expect(ClusterMessage(text: "trusted\tmx3").map(\.guardID) == "mx3")
        for broken in ["", "trusted", "trusted\tmx\textra", "lift\tmx\tip", "lift\tmx\tnowhere\tkey", "ban\tmx\tip\t10.0.0.1", "hello\tmx"] {
            #expect(ClusterMessage(text: broken) == nil, "\(broken)")
        }
    }
}
