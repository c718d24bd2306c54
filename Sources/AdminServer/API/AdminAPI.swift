// The admin API's router (docs/openapi.yaml describes each route; a test holds the two
// together): the token check, the dashboard page, `/api/status`, the route collections of
// each area (API/Routes/), and `/metrics`. Handlers only read the query or body, ask the
// engine, the feed, the statistics or the trusted-network book, and answer the Codable
// values of API/Models/ (AdminJSON writes them).

import GuardCore
import GuardStore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

public struct AdminAPI: Sendable {
    public let guardEngine: Guard
    public let feed: EventFeed
    public let stats: StatsRecorder
    public let alerts: AlertLog
    public let trusted: TrustedNetworkBook
    public let metrics: GuardMetrics
    public let registry: MetricsRegistry
    public let token: String
    public let maxBodySize: Int
    public let started: Timestamp
    public let logger: Logger
    /// How often a server-sent event stream says it is alive when nothing happens.
    public var heartbeat: Duration = .seconds(15)

    public init(
        guardEngine: Guard, feed: EventFeed, stats: StatsRecorder, alerts: AlertLog, trusted: TrustedNetworkBook, metrics: GuardMetrics,
        registry: MetricsRegistry, token: String, maxBodySize: Int, logger: Logger
    ) {
        self.guardEngine = guardEngine
        self.feed = feed
        self.stats = stats
        self.alerts = alerts
        self.trusted = trusted
        self.metrics = metrics
        self.registry = registry
        self.token = token
        self.maxBodySize = maxBodySize
        self.started = guardEngine.clock.now()
        self.logger = logger
    }

    /// Pages served without a token: they hold no data.
    public static let openPaths: Set<String> = ["/", "/dashboard"]

    public func router() -> Router<AdminRequestContext> {
        let router = Router(context: AdminRequestContext.self)
        let clock = self.guardEngine.clock
        let body = RequestBodyReader(maxBodySize: self.maxBodySize)
        router.add(middleware: BearerAuthMiddleware(token: Array(self.token.utf8), openPaths: Self.openPaths, logger: self.logger))
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/dashboard"]) }
        router.get("/dashboard") { _, _ in Self.dashboard() }
        router.get("/api/status") { request, _ in try self.status(request) }
        router.addRoutes(BansRoutes(guardEngine: self.guardEngine, body: body, logger: self.logger).collection, atPath: "/api/bans")
        router.addRoutes(EventsRoutes(feed: self.feed, clock: clock, heartbeat: self.heartbeat).collection, atPath: "/api/events")
        router.addRoutes(StatsRoutes(guardEngine: self.guardEngine, stats: self.stats).collection, atPath: "/api/stats")
        router.addRoutes(AlertsRoutes(alerts: self.alerts, clock: clock).collection, atPath: "/api/alerts")
        router.addRoutes(TrustedRoutes(trusted: self.trusted, clock: clock, body: body, logger: self.logger).collection, atPath: "/api/trusted")
        router.get("/metrics") { request, _ in try self.scrape(request) }
        return router
    }

    // MARK: - Dashboard

    static func dashboard() -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                .contentSecurityPolicy: "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: DashboardPage.html)))
    }

    // MARK: - Status

    func status(_ request: Request) throws -> StatusResponse {
        _ = try Query(request, allowed: [])
        let now = self.guardEngine.clock.now()
        return StatusResponse(
            version: SMTPGuardVersion.current, started: self.started.iso8601, uptimeSeconds: Int((now - self.started).wholeSeconds),
            activeBans: self.guardEngine.activeBans().count, eventFollowers: self.feed.followerCount)
    }

    // MARK: - Metrics

    /// The Prometheus text exposition, with the active-ban gauges brought up to date first.
    func scrape(_ request: Request) throws -> Response {
        _ = try Query(request, allowed: [])
        self.metrics.updateActiveBans(self.guardEngine.activeBans())
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: self.registry.exposition())))
    }
}
