import AdminServer
import Foundation
import GuardCore
import GuardStore
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

/// A guard with the admin side wired as `smtpguard run` wires it, metrics in a registry of its own.
struct AdminFixture {
    static let token = "sgt_test_token_0123456789abcdef"
    let clock = ManualClock()
    let guardEngine: Guard
    let components: AdminComponents
    let api: AdminAPI

    init(configuration: GuardConfiguration = GuardConfiguration()) async throws {
        var configuration = configuration
        configuration.admin.token = Self.token
        let logger = Logger(label: "test")
        self.components = AdminComponents(configuration: configuration, registry: MetricsRegistry(), clock: self.clock, logger: logger)
        self.guardEngine = Guard(policy: configuration.policy, clock: self.clock, events: FanOutEventSink(self.components.sinks), seed: 1)
        let trusted = TrustedNetworkBook(configured: configuration.policy.trustedNetworks.networks, store: nil, guardEngine: self.guardEngine)
        try await trusted.load()
        self.api = AdminAPI(
            guardEngine: self.guardEngine, feed: self.components.feed, stats: self.components.stats, alerts: self.components.alertLog, trusted: trusted,
            metrics: self.components.metrics, registry: self.components.registry, token: Self.token, maxBodySize: 1024, logger: logger)
    }

    var application: some ApplicationProtocol { Application(router: self.api.router()) }

    /// A failed AUTH from `client` as the proxy records it.
    func fail(_ client: String, _ username: String) {
        let attempt = AuthAttempt(time: self.clock.now(), client: IPAddress(client)!, username: username, outcome: .failure)
        let decision = self.guardEngine.decide(attempt)
        self.components.feed.record(.attempt(AttemptRecord(attempt: attempt, session: "s", replyCode: 535, decision: decision)))
        self.components.stats.record(.attempt(AttemptRecord(attempt: attempt, session: "s", replyCode: 535, decision: decision)))
        self.components.metrics.record(.attempt(AttemptRecord(attempt: attempt, session: "s", replyCode: 535, decision: decision)))
    }
}

let auth: HTTPFields = [.authorization: "Bearer \(AdminFixture.token)"]

func json(_ response: TestResponse) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
}

@Suite struct AdminAPITests {
    @Test func everyRouteNeedsTheTokenButTheDashboardPage() async throws {
        let fixture = try await AdminFixture()
        try await fixture.application.test(.router) { client in
            for (method, uri) in [
                (HTTPRequest.Method.get, "/api/bans"), (.post, "/api/bans"), (.delete, "/api/bans/ip/192.0.2.1"), (.get, "/api/events"),
                (.get, "/api/stats"), (.get, "/api/alerts"), (.get, "/api/trusted"), (.post, "/api/trusted"), (.delete, "/api/trusted/10.0.0.0/8"),
                (.get, "/metrics"), (.get, "/api/status"),
            ] {
                let none = try await client.execute(uri: uri, method: method)
                #expect(none.status == .unauthorized, "\(method) \(uri)")
                #expect(none.headers[.wwwAuthenticate] == "Bearer realm=\"smtpguard\"")
                let wrong = try await client.execute(uri: uri, method: method, headers: [.authorization: "Bearer sgt_wrong"])
                #expect(wrong.status == .unauthorized)
                #expect(!String(buffer: wrong.body).contains(AdminFixture.token))
                let basic = try await client.execute(uri: uri, method: method, headers: [.authorization: "Basic YTpi"])
                #expect(basic.status == .unauthorized)
            }
            let page = try await client.execute(uri: "/dashboard", method: .get)
            #expect(page.status == .ok)
            #expect(String(buffer: page.body).contains("<title>SMTPGuard</title>"))
            #expect(!String(buffer: page.body).contains("http://") && !String(buffer: page.body).contains("https://"), "no external asset")
        }
    }

    @Test func bansAddListFilterPageAndLift() async throws {
        let fixture = try await AdminFixture()
        try await fixture.application.test(.router) { client in
            for (scope, key) in [("ip", "192.0.2.7"), ("prefix", "198.51.100.0/24"), ("username", "Guest")] {
                let added = try await client.execute(
                    uri: "/api/bans", method: .post, headers: auth, body: ByteBuffer(string: #"{"scope":"\#(scope)","key":"\#(key)","duration":"2h"}"#))
                #expect(added.status == .created)
                fixture.clock.advance(by: .seconds(1))
            }
            #expect(fixture.guardEngine.connectionBan(for: IPAddress("192.0.2.7")!) != nil)
            let all = try json(try await client.execute(uri: "/api/bans", method: .get, headers: auth))
            #expect(all["total"] as? Int == 3)
            #expect((all["bans"] as? [[String: Any]])?.first?["key"] as? String == "guest", "newest first, normalised")
            let ips = try json(try await client.execute(uri: "/api/bans?scope=ip", method: .get, headers: auth))
            #expect(ips["total"] as? Int == 1)
            let page = try json(try await client.execute(uri: "/api/bans?limit=1&offset=1", method: .get, headers: auth))
            #expect((page["bans"] as? [[String: Any]])?.count == 1 && (page["bans"] as? [[String: Any]])?.first?["scope"] as? String == "prefix")
            let byKey = try json(try await client.execute(uri: "/api/bans?key=198.51", method: .get, headers: auth))
            #expect(byKey["total"] as? Int == 1)
            #expect(try await client.execute(uri: "/api/bans?scope=planet", method: .get, headers: auth).status == .badRequest)
            #expect(try await client.execute(uri: "/api/bans?limt=5", method: .get, headers: auth).status == .badRequest)

            let lifted = try await client.execute(uri: "/api/bans/prefix/198.51.100.0/24", method: .delete, headers: auth)
            #expect(lifted.status == .ok)
            let encoded = try await client.execute(uri: "/api/bans/ip/192.0.2.7", method: .delete, headers: auth)
            #expect(encoded.status == .ok)
            #expect(fixture.guardEngine.connectionBan(for: IPAddress("192.0.2.7")!) == nil)
            #expect(try await client.execute(uri: "/api/bans/ip/192.0.2.7", method: .delete, headers: auth).status == .notFound)
            #expect(try await client.execute(uri: "/api/bans/username/guest", method: .delete, headers: auth).status == .ok)
        }
    }

    @Test func malformedOrOversizedBodiesAre400WithTheReason() async throws {
        let fixture = try await AdminFixture()
        try await fixture.application.test(.router) { client in
            let cases: [(String, String)] = [
                (#"{"scope":"ip""#, "not valid JSON"),
                (#"{"scope":"ip","key":7,"duration":60}"#, "key: expected a string"),
                (#"{"scope":"ip","duration":60}"#, "missing field \"key\""),
                (#"{"scope":"galaxy","key":"x","duration":60}"#, "scope: expected ip, prefix or username"),
                (#"{"scope":"ip","key":"999.1.1.1","duration":60}"#, "is not an IP address"),
                (#"{"scope":"ip","key":"192.0.2.1","duration":"soon"}"#, "duration"),
                (#"{"scope":"ip","key":"192.0.2.1","duration":60,"reason":"because"}"#, "reason: expected one of"),
                ("", "empty"),
                (String(repeating: " ", count: 2000) + "{}", "larger than 1024 bytes"),
            ]
            for (body, reason) in cases {
                let response = try await client.execute(uri: "/api/bans", method: .post, headers: auth, body: ByteBuffer(string: body))
                #expect(response.status == .badRequest, "\(body.prefix(40))")
                let error = try json(response)["error"] as? String ?? ""
                #expect(error.contains(reason), "\(error)")
            }
            let trusted = try await client.execute(uri: "/api/trusted", method: .post, headers: auth, body: ByteBuffer(string: #"{"network":"10.0.0.0/33"}"#))
            #expect(trusted.status == .badRequest)
        }
    }

    @Test func eventsFilteredAndStatisticsAndTopAttackers() async throws {
        let fixture = try await AdminFixture()
        for i in 1...3 { fixture.fail("203.0.113.\(i)", "admin") }
        fixture.fail("203.0.113.1", "guest")
        fixture.clock.advance(by: .seconds(61))
        fixture.fail("198.51.100.9", "info")
        try await fixture.application.test(.router) { client in
            let events = try json(try await client.execute(uri: "/api/events?kind=auth&client=203.0.113.1", method: .get, headers: auth))
            let list = events["events"] as? [[String: Any]] ?? []
            #expect(list.count == 2)
            #expect(list.allSatisfy { $0["client_ip"] as? String == "203.0.113.1" && $0["event"] as? String == "auth" && $0["id"] is Int })
            let firstID = try #require(list.first?["id"] as? Int)
            let after = try json(try await client.execute(uri: "/api/events?after=\(firstID)&client=203.0.113.1&kind=auth", method: .get, headers: auth))
            #expect((after["events"] as? [[String: Any]])?.count == 1, "\(after)")
            let byUser = try json(try await client.execute(uri: "/api/events?username=GUEST", method: .get, headers: auth))
            #expect((byUser["events"] as? [[String: Any]])?.count == 1)
            #expect(try await client.execute(uri: "/api/events?kind=nonsense", method: .get, headers: auth).status == .badRequest)
            #expect(try await client.execute(uri: "/api/events?since=yesterday", method: .get, headers: auth).status == .badRequest)

            let stats = try json(try await client.execute(uri: "/api/stats?period=1h&top=2&timeline=3", method: .get, headers: auth))
            let hour = try #require((stats["periods"] as? [[String: Any]])?.first)
            #expect(hour["attempts"] as? Int == 5 && hour["failures"] as? Int == 5)
            let topIPs = hour["top_ips"] as? [[String: Any]] ?? []
            #expect(topIPs.first?["key"] as? String == "203.0.113.1" && topIPs.first?["failures"] as? Int == 2)
            #expect(topIPs.count == 2)
            #expect((hour["top_prefixes"] as? [[String: Any]])?.first?["key"] as? String == "203.0.113.0/24")
            #expect((hour["top_usernames"] as? [[String: Any]])?.first?["key"] as? String == "admin")
            let timeline = stats["timeline"] as? [[String: Any]] ?? []
            #expect(timeline.map { $0["failures"] as? Int } == [0, 4, 1])
            #expect(try await client.execute(uri: "/api/stats?period=2d", method: .get, headers: auth).status == .badRequest)
        }
    }

    @Test func trustedNetworksAddListRemoveAndTheEngineHeedsThem() async throws {
        var configuration = GuardConfiguration()
        configuration.policy.trustedNetworks = NetworkList([IPNetwork("192.0.2.0/24")!])
        let fixture = try await AdminFixture(configuration: configuration)
        try await fixture.application.test(.router) { client in
            #expect(!fixture.guardEngine.isTrusted(IPAddress("10.1.2.3")!))
            let added = try await client.execute(uri: "/api/trusted", method: .post, headers: auth, body: ByteBuffer(string: #"{"network":"10.0.0.0/8","comment":"VPN"}"#))
            #expect(added.status == .created)
            #expect(fixture.guardEngine.isTrusted(IPAddress("10.1.2.3")!))
            let list = try json(try await client.execute(uri: "/api/trusted", method: .get, headers: auth))["networks"] as? [[String: Any]] ?? []
            #expect(list.map { $0["network"] as? String } == ["192.0.2.0/24", "10.0.0.0/8"])
            #expect(list.map { $0["origin"] as? String } == ["configuration", "api"])
            let ban = try await client.execute(uri: "/api/bans", method: .post, headers: auth, body: ByteBuffer(string: #"{"scope":"ip","key":"10.9.9.9","duration":60}"#))
            #expect(ban.status == .conflict)
            #expect(try await client.execute(uri: "/api/trusted/192.0.2.0/24", method: .delete, headers: auth).status == .conflict)
            #expect(try await client.execute(uri: "/api/trusted/10.0.0.0%2F8", method: .delete, headers: auth).status == .ok)
            #expect(!fixture.guardEngine.isTrusted(IPAddress("10.1.2.3")!))
            #expect(try await client.execute(uri: "/api/trusted/10.0.0.0/8", method: .delete, headers: auth).status == .notFound)
        }
    }

    /// A database that fails the way PostgreSQL does: with text that names the query.
    struct BrokenStore: StateStore {
        static let detail = #"server: relation "trusted_networks" does not exist (INSERT INTO trusted_networks (network, comment) VALUES ($1, $2)) postgres://guard:s3cret@db/guard"#
        func load(now: Timestamp, since: Timestamp, successesSince: Timestamp, bansSince: Timestamp) async throws -> StoredState { throw GuardStoreError(.write, Self.detail) }
        func write(_ events: [GuardEvent]) async throws { throw GuardStoreError(.write, Self.detail) }
        func prune(before: Timestamp) async throws { throw GuardStoreError(.write, Self.detail) }
        func migrate() async throws -> (before: Int, after: Int) { throw GuardStoreError(.write, Self.detail) }
        func status(now: Timestamp) async throws -> StoreStatus { throw GuardStoreError(.write, Self.detail) }
        func close() async {}
        func trustedNetworks() async throws -> [TrustedNetwork] { [] }
        func addTrustedNetwork(_ entry: TrustedNetwork) async throws { throw GuardStoreError(.write, Self.detail) }
        func removeTrustedNetwork(_ network: IPNetwork) async throws -> Bool { throw GuardStoreError(.write, Self.detail) }
        func recentAlerts(limit: Int) async throws -> [Alert] { [] }
    }

    @Test func aStateErrorIsA503WithAFixedMessageAndCodeNeverTheDatabaseText() async throws {
        let clock = ManualClock()
        let logger = Logger(label: "test")
        let components = AdminComponents(configuration: GuardConfiguration(), registry: MetricsRegistry(), clock: clock, logger: logger)
        let guardEngine = Guard(policy: GuardPolicy(), clock: clock, seed: 1)
        let trusted = TrustedNetworkBook(configured: [], store: BrokenStore(), guardEngine: guardEngine)
        try await trusted.load()
        let api = AdminAPI(
            guardEngine: guardEngine, feed: components.feed, stats: components.stats, alerts: components.alertLog, trusted: trusted,
            metrics: components.metrics, registry: components.registry, token: AdminFixture.token, maxBodySize: 1024, logger: logger)
        try await Application(router: api.router()).test(.router) { client in
            let added = try await client.execute(uri: "/api/trusted", method: .post, headers: auth, body: ByteBuffer(string: #"{"network":"10.0.0.0/8"}"#))
            let removed = try await client.execute(uri: "/api/trusted/10.0.0.0/8", method: .delete, headers: auth)
            for response in [added, removed] {
                #expect(response.status == .serviceUnavailable)
                let body = String(buffer: response.body)
                #expect(!body.contains("INSERT") && !body.contains("relation") && !body.contains("s3cret") && !body.contains("postgres:"), "\(body)")
                let fields = try json(response)
                #expect(fields["code"] as? String == "state_unavailable")
                #expect((fields["error"] as? String)?.hasPrefix("the state cannot be written, nothing changed (see the guard's log, ref ") == true)
            }
        }
        #expect(!guardEngine.isTrusted(IPAddress("10.1.2.3")!))
    }

    @Test("the admin server on [::]:P starts beside another listener on 0.0.0.0:P (IPv6-only), answers over ::1, and stops gracefully with a connection open")
    func adminServerIPv6Only() async throws {
        let fixture = try await AdminFixture()
        let group = MultiThreadedEventLoopGroup.singleton
        // A port free for both families, below the ephemeral range other tests' :0 draw from.
        var found = 0
        for candidate in (0..<50).map({ _ in Int.random(in: 20_000..<32_000) }) where found == 0 {
            if let probe = try? await ServerBootstrap(group: group).bind(host: "::", port: candidate).get() {
                try await probe.close()
                found = candidate
            }
        }
        let port = found
        let ipv4 = try await ServerBootstrap(group: group).bind(host: "0.0.0.0", port: port).get()  // another server's IPv4 socket
        let bound = Mutex<String?>(nil)
        let service = AdminServerService(api: fixture.api, address: HostPort(host: "::", port: port), logger: Logger(label: "test")) { address in
            bound.withLock { $0 = address }
        }
        let services = ServiceGroup(services: [service], gracefulShutdownSignals: [], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await services.run() }
            for _ in 0..<200 where bound.withLock({ $0 == nil }) { try await Task.sleep(for: .milliseconds(10)) }
            #expect(bound.withLock { $0 } == "[::]:\(port)")
            let idle = try await ClientBootstrap(group: group).connect(host: "::1", port: port).get()  // stays open
            let answer = try await ClientBootstrap(group: group).connect(host: "::1", port: port).get()
            let reply = try await rawHTTP(answer, "GET /api/bans HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(AdminFixture.token)\r\nConnection: close\r\n\r\n")
            #expect(reply.hasPrefix("HTTP/1.1 200"), "\(reply)")
            await services.triggerGracefulShutdown()
            try await tasks.waitForAll()
            try? await idle.close()
        }
        try await ipv4.close()
    }

    @Test func theAdminServiceAsServiceLifecycleLogsItShowsNoToken() async throws {
        let fixture = try await AdminFixture()
        let service = AdminServerService(api: fixture.api, address: HostPort("127.0.0.1:8025")!, logger: Logger(label: "test"))
        // ServiceLifecycle writes "sl-service=\(service)" at debug level.
        let text = "\(service) \(String(describing: service)) \([service])"
        #expect(!text.contains(AdminFixture.token), "\(text)")
        #expect(text.contains("AdminServerService"))
    }

    @Test func alertsAreListedNewestFirst() async throws {
        let fixture = try await AdminFixture()
        let base = fixture.clock.now()
        fixture.components.alertLog.load([
            Alert(kind: .distributedAttack, severity: .warning, time: base, username: "info", client: nil, message: "older")
        ])
        fixture.components.alertLog.record(
            .alert(Alert(kind: .weakCredentialAccepted, severity: .critical, time: base + .seconds(5), username: "admin", client: IPAddress("192.0.2.5"), message: "newer")))
        try await fixture.application.test(.router) { client in
            let alerts = try json(try await client.execute(uri: "/api/alerts", method: .get, headers: auth))["alerts"] as? [[String: Any]] ?? []
            #expect(alerts.map { $0["message"] as? String } == ["newer", "older"])
            #expect(alerts.first?["client_ip"] as? String == "192.0.2.5")
            let weak = try json(try await client.execute(uri: "/api/alerts?kind=weak_credential_accepted", method: .get, headers: auth))["alerts"] as? [[String: Any]] ?? []
            #expect(weak.count == 1)
        }
    }

    @Test func metricsAreScrapedAndParseWithoutUsernamesOrAddresses() async throws {
        let fixture = try await AdminFixture()
        fixture.fail("203.0.113.77", "secretuser")
        fixture.guardEngine.placeBan(.ip(IPAddress("203.0.113.77")!), duration: .seconds(60))
        try await fixture.application.test(.router) { client in
            let response = try await client.execute(uri: "/metrics", method: .get, headers: auth)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = String(buffer: response.body)
            var samples: [String: Double] = [:]
            for line in text.split(separator: "\n") {
                if line.hasPrefix("#") {
                    #expect(line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE "), "\(line)")
                    continue
                }
                // name{labels} value: the exposition format.
                let parts = line.split(separator: " ")
                #expect(parts.count == 2, "\(line)")
                let value = try #require(Double(parts[1]), "\(line)")
                samples[String(parts[0])] = value
            }
            #expect(samples[#"smtpguard_auth_attempts_total{outcome="failure",mechanism="PLAIN",source="proxy"}"#] == 1)
            #expect(samples[#"smtpguard_decisions_total{decision="refuse"}"#] == 1, "a failure that stands is a refusal")
            #expect(samples[#"smtpguard_active_bans{scope="ip"}"#] == 1)
            #expect(samples[#"smtpguard_bans_issued_total{scope="ip",reason="manual"}"#] == 1)
            #expect(text.contains("# HELP smtpguard_auth_attempts_total "))
            #expect(!text.contains("secretuser") && !text.contains("203.0.113.77"))
        }
    }

    @Test func serverSentEventsDeliverTheBacklogThenLiveEvents() async throws {
        let fixture = try await AdminFixture()
        fixture.fail("203.0.113.1", "admin")
        let guardEngine = fixture.guardEngine
        let feed = fixture.components.feed
        try await fixture.application.test(.live) { client in
            // Ask for the backlog after id 0 and stay for the live ones; a ban made while the
            // stream is open arrives on it.
            async let stream = client.execute(
                uri: "/api/events?follow=1&after=0&kind=auth,ban", method: .get, headers: auth
            )
            try await Task.sleep(for: .milliseconds(300))
            guardEngine.placeBan(.ip(IPAddress("198.51.100.1")!), duration: .seconds(60))
            try await Task.sleep(for: .milliseconds(300))
            feed.close()
            let response = try await stream
            let text = String(buffer: response.body)
            #expect(response.headers[.contentType] == "text/event-stream")
            #expect(text.contains("event: auth\ndata: {\"id\":1,"))
            #expect(text.contains("event: ban\ndata: {\"id\":2,") && text.contains("198.51.100.1"))
        }
    }
}

/// Sends a raw HTTP request and collects everything until the server closes (or 5 s).
func rawHTTP(_ channel: any Channel, _ request: String) async throws -> String {
    let collector = RawCollector(closed: channel.eventLoop.makePromise(of: Void.self))
    try await channel.pipeline.addHandler(collector).get()
    try await channel.writeAndFlush(ByteBuffer(string: request))
    let timeout = channel.eventLoop.scheduleTask(in: .seconds(5)) { channel.close(promise: nil) }
    try await collector.closed.futureResult.get()
    timeout.cancel()
    return collector.text.withLock { $0 }
}

final class RawCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let text = Mutex<String>("")
    let closed: EventLoopPromise<Void>
    init(closed: EventLoopPromise<Void>) { self.closed = closed }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = String(buffer: Self.unwrapInboundIn(data))
        self.text.withLock { $0 += part }
    }
    func channelInactive(context: ChannelHandlerContext) { self.closed.succeed() }
}
