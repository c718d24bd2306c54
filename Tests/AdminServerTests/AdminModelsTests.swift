@testable import AdminServer
import Foundation
import GuardCore
import GuardStore
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// The admin API's Codable values: what the server writes is what the command line reads, and
/// an event on the API has every field of its event-log line.
@Suite struct AdminModelsTests {
    static func object(_ text: String) throws -> NSDictionary {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? NSDictionary)
    }

    static let t0 = Timestamp(seconds: 1_795_000_000)

    /// Every kind of event, each with every field it can have.
    static var events: [GuardEvent] {
        let attempt = AuthAttempt(
            time: t0, client: IPAddress("192.0.2.7")!, clientPort: 40112, username: "admin", mechanism: .login, tls: true, tlsVersion: "TLSv1.3",
            outcome: .failure, source: .proxy, credential: CredentialEvidence(isDefaultPassword: true))
        let decision = Decision(verdict: .refuse, delay: .milliseconds(2000), reasons: [.pairLimit, .tarpit])
        let ban = Ban(key: .prefix(IPNetwork("192.0.2.0/24")!), since: t0, until: t0 + .seconds(900), reason: .prefixFailures, offense: 2)
        let alert = Alert(kind: .weakCredentialAccepted, severity: .critical, time: t0, username: "admin", client: IPAddress("192.0.2.7"), message: "a \"quoted\"\n/text")
        return [
            .attempt(AttemptRecord(attempt: attempt, session: "3dc27ae14ac0", replyCode: 535, decision: decision)),
            .ban(ban), .unban(ban, time: t0 + .seconds(5), lifted: true), .alert(alert),
            .sending(SendingRecord(
                request: SendingRequest(time: t0, username: "bob", client: IPAddress("192.0.2.8"), kind: .recipients(3), source: .postfixPolicy),
                decision: SendingDecision(allowed: false, lock: ban))),
        ]
    }

    @Test("an event on the API has every field of its event-log line, and its id")
    func eventsKeepEveryField() throws {
        var lines = Self.events.map(\.jsonLine)
        // A refused sending request with its limit: the engine makes those (SendingExcess has no public init).
        lines.append(#"{"time":"2026-11-22T23:24:39.512Z","event":"sending","source":"proxy","username":"bob","client_ip":"192.0.2.8","counts":"recipients","amount":3,"decision":"refuse","limit":"500 recipients per hour","sent":499,"addresses":2,"locked_until":"2026-11-23T00:24:39.512Z"}"#)
        for line in lines {
            let record = try EventRecord(line: line, id: 42)
            let written = String(decoding: try AdminJSON.encode(record), as: UTF8.self)
            let expected = try Self.object(line).mutableCopy() as! NSMutableDictionary
            expected["id"] = 42
            #expect(try Self.object(written) == expected, "\(line)\n\(written)")
        }
    }

    @Test("an answer is the same bytes every time: sorted keys, slashes as they are, one newline at the end")
    func answersAreStable() throws {
        let entry = TrustedNetworkRecord(TrustedNetworkBook.Entry(network: IPNetwork("10.0.0.0/8")!, origin: .api, comment: "VPN", added: Self.t0))
        let text = String(decoding: try AdminJSON.encode(entry), as: UTF8.self)
        #expect(text == #"{"added":"\#(Self.t0.iso8601)","comment":"VPN","network":"10.0.0.0/8","origin":"api"}"# + "\n")
        let error = String(decoding: try AdminJSON.encode(ErrorBody(error: "no such ban")), as: UTF8.self)
        #expect(error == #"{"error":"no such ban"}"# + "\n")
    }

    @Test("a duration in a ban request is read as seconds or text, and written back as given")
    func flexibleDuration() throws {
        let text = try AdminJSON.decode(BanRequest.self, from: #"{"scope":"ip","key":"192.0.2.7","duration":"2h"}"#)
        #expect(text.duration.value == .seconds(7200))
        let seconds = try AdminJSON.decode(BanRequest.self, from: #"{"scope":"ip","key":"192.0.2.7","duration":90}"#)
        #expect(seconds.duration.value == .seconds(90))
        let written = String(decoding: try AdminJSON.encoder().encode(text), as: UTF8.self)
        #expect(written == #"{"duration":"2h","key":"192.0.2.7","scope":"ip"}"#)
        #expect(FlexibleDuration("soon") == nil)
    }

    @Test("what each route answers reads back as the value the command line expects")
    func routesAnswerTheModels() async throws {
        let fixture = try await AdminFixture()
        fixture.fail("203.0.113.1", "admin")
        fixture.guardEngine.placeBan(.ip(IPAddress("203.0.113.1")!), duration: .seconds(60))
        try await fixture.application.test(.router) { client in
            func get<T: Decodable>(_ uri: String, _ type: T.Type) async throws -> T {
                let response = try await client.execute(uri: uri, method: .get, headers: auth)
                #expect(response.status == .ok, "\(uri)")
                #expect(response.headers[.contentType] == "application/json; charset=utf-8" && response.headers[.cacheControl] == "no-store")
                let text = String(buffer: response.body)
                #expect(text.hasSuffix("}\n"), "\(uri)")
                return try AdminJSON.decode(T.self, from: text)
            }
            let bans = try await get("/api/bans", BanList.self)
            #expect(bans.total == 1 && bans.bans.first?.key == "203.0.113.1" && bans.bans.first?.remainingSeconds == 60)
            let events = try await get("/api/events", EventList.self)
            #expect(events.events.map(\.event) == ["auth", "ban"] && events.events.map(\.id) == [1, 2] && events.nextID == 3)
            let stats = try await get("/api/stats?timeline=2", StatsResponse.self)
            #expect(stats.periods.first?.failures == 1 && stats.activeBans.ip == 1 && stats.timeline?.count == 2)
            #expect(try await get("/api/stats", StatsResponse.self).timeline == nil)
            let status = try await get("/api/status", StatusResponse.self)
            #expect(status.activeBans == 1 && status.version == SMTPGuardVersion.current)
            #expect(try await get("/api/alerts", AlertList.self).alerts.isEmpty)
            #expect(try await get("/api/trusted", TrustedNetworkList.self).networks.isEmpty)
            let missing = try await client.execute(uri: "/api/bans/ip/198.51.100.1", method: .delete, headers: auth)
            #expect(missing.status == .notFound)
            #expect(try AdminJSON.decode(ErrorBody.self, from: String(buffer: missing.body)).error == "no ban in force for ip 198.51.100.1")
        }
    }
}

@Suite struct DashboardPageTests {
    @Test("the page served is Resources/dashboard.html byte for byte (embedded at build time)")
    func embeddedPageIsTheFile() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/AdminServer/Resources/dashboard.html")
        #expect(DashboardPage.html == (try String(contentsOf: file, encoding: .utf8)))
    }
}
