// The admin API's routes (docs/openapi.yaml describes each; a test holds the two together).
// Handlers only read the query or body, ask the engine, the feed, the statistics or the
// trusted-network book, and write JSON.

import Foundation
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
        router.add(middleware: BearerAuthMiddleware(token: Array(self.token.utf8), openPaths: Self.openPaths, logger: self.logger))
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/dashboard"]) }
        router.get("/dashboard") { _, _ in
            Response(
                status: .ok,
                headers: [
                    .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                    .contentSecurityPolicy: "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'",
                ],
                body: ResponseBody(byteBuffer: ByteBuffer(string: DashboardPage.html)))
        }
        router.get("/api/status") { request, _ in try self.status(request) }
        router.get("/api/bans") { request, _ in try self.listBans(request) }
        router.post("/api/bans") { request, _ in try await self.addBan(request) }
        router.delete("/api/bans/:scope/**") { request, context in try self.liftBan(request, context: context) }
        router.get("/api/events") { request, _ in try self.events(request) }
        router.get("/api/stats") { request, _ in try self.statistics(request) }
        router.get("/api/alerts") { request, _ in try self.listAlerts(request) }
        router.get("/api/trusted") { request, _ in try await self.listTrusted(request) }
        router.post("/api/trusted") { request, _ in try await self.addTrusted(request) }
        router.delete("/api/trusted/**") { request, context in try await self.removeTrusted(request, context: context) }
        router.get("/metrics") { request, _ in try self.scrape(request) }
        return router
    }

    // MARK: - Status

    func status(_ request: Request) throws -> Response {
        _ = try Query(request, allowed: [])
        let now = self.guardEngine.clock.now()
        let bans = self.guardEngine.activeBans()
        var json = JSONObjectWriter()
        json.string("version", SMTPGuardVersion.current)
        json.string("started", self.started.iso8601)
        json.int("uptime_s", Int((now - self.started).wholeSeconds))
        json.int("active_bans", bans.count)
        json.int("event_followers", self.feed.followerCount)
        return JSONResponse.ok(json.finish())
    }

    // MARK: - Bans

    func listBans(_ request: Request) throws -> Response {
        let query = try Query(request, allowed: ["scope", "key", "reason", "limit", "offset"])
        let scope = try query.choice("scope", BanScope.self)
        let reason = try query.choice("reason", Reason.self)
        let key = query["key"]?.lowercased()
        let limit = try query.int("limit", default: 100, range: 1...1000)
        let offset = try query.int("offset", default: 0, range: 0...Int.max)
        let now = self.guardEngine.clock.now()
        let matching = self.guardEngine.activeBans()
            .filter { ban in
                (scope == nil || ban.key.scope == scope) && (reason == nil || ban.reason == reason)
                    && (key == nil || ban.key.description.lowercased().contains(key!))
            }
            .sorted { $0.since != $1.since ? $0.since > $1.since : $0.key.description < $1.key.description }
        let page = matching.dropFirst(offset).prefix(limit)
        var json = JSONObjectWriter()
        json.int("total", matching.count)
        json.int("offset", offset)
        json.int("limit", limit)
        json.raw("bans", "[" + page.map { Self.json($0, now: now) }.joined(separator: ",") + "]")
        return JSONResponse.ok(json.finish())
    }

    struct BanRequest: Decodable {
        var scope: String
        var key: String
        var duration: FlexibleDuration
        var reason: String?
    }

    func addBan(_ request: Request) async throws -> Response {
        _ = try Query(request, allowed: [])
        let body: BanRequest = try await self.decode(request)
        guard let scope = BanScope(rawValue: body.scope.lowercased()) else {
            throw APIError.badRequest("scope: expected ip, prefix or username, got \"\(body.scope.logSafe)\"")
        }
        let key = try Self.banKey(scope: scope, text: body.key, guardEngine: self.guardEngine)
        let duration = body.duration.value
        guard duration > .zero, duration <= .seconds(100 * 365 * 86_400) else { throw APIError.badRequest("duration: must be more than 0 and at most 100 years") }
        var reason = Reason.manual
        if let text = body.reason {
            guard let known = Reason(rawValue: text.lowercased()) else {
                throw APIError.badRequest("reason: expected one of \(Reason.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(text.logSafe)\"")
            }
            reason = known
        }
        if case .ip(let address) = key, self.guardEngine.isTrusted(address) {
            throw APIError(.conflict, "\(address) is in a trusted network: it is never banned (remove the network from the trusted ones first)")
        }
        let ban = self.guardEngine.placeBan(key, duration: duration, reason: reason)
        self.logger.notice("admin API: banned \(key.scope.rawValue) \(key.description.logSafe) for \(duration.compactText) (\(reason.rawValue))")
        return JSONResponse.make(.created, Self.json(ban, now: self.guardEngine.clock.now()))
    }

    func liftBan(_ request: Request, context: AdminRequestContext) throws -> Response {
        _ = try Query(request, allowed: [])
        let scopeText = context.parameters.get("scope") ?? ""
        guard let scope = BanScope(rawValue: scopeText.lowercased()) else {
            throw APIError.notFound("no such ban scope \"\(scopeText.logSafe)\": expected ip, prefix or username")
        }
        let keyText = Self.catchAll(context)
        let key = try Self.banKey(scope: scope, text: keyText, guardEngine: self.guardEngine)
        guard let ban = self.guardEngine.liftBan(key) else {
            throw APIError.notFound("no ban in force for \(scope.rawValue) \(keyText.logSafe)")
        }
        self.logger.notice("admin API: lifted the ban on \(key.scope.rawValue) \(key.description.logSafe)")
        return JSONResponse.ok(Self.json(ban, now: self.guardEngine.clock.now()))
    }

    static func banKey(scope: BanScope, text: String, guardEngine: Guard) throws -> BanKey {
        switch scope {
        case .ip:
            guard let address = IPAddress(text) else { throw APIError.badRequest("key: \"\(text.logSafe)\" is not an IP address") }
            return .ip(guardEngine.clientKey(address))
        case .prefix:
            guard let network = IPNetwork(text) else { throw APIError.badRequest("key: \"\(text.logSafe)\" is not a network (e.g. 192.0.2.0/24)") }
            return .prefix(network)
        case .username:
            let name = guardEngine.normalize(text)
            guard !name.isEmpty, name.count <= 320, !name.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } == true }) else {
                throw APIError.badRequest("key: \"\(text.logSafe)\" is not a username")
            }
            return .username(name)
        }
    }

    static func json(_ ban: Ban, now: Timestamp) -> String {
        var json = JSONObjectWriter()
        ban.writeFields(into: &json)
        json.int("remaining_s", Int((ban.until - now).wholeSeconds))
        json.bool("known_places_exempt", ban.exemptKnownPlaces)
        return json.finish()
    }

    // MARK: - Events

    func events(_ request: Request) throws -> Response {
        let query = try Query(request, allowed: ["kind", "client", "username", "since", "after", "limit", "follow"])
        var filter = FeedFilter()
        filter.kinds = try query.set("kind", allowed: EventFeed.kinds)
        if let client = query["client"] {
            guard let address = IPAddress(client) else { throw APIError.badRequest("client: \"\(client.logSafe)\" is not an IP address") }
            filter.client = address
        }
        filter.username = query["username"]
        filter.since = try query.time("since", now: self.guardEngine.clock.now())
        filter.afterID = try query.optionalInt("after", range: 0...Int.max)
        let limit = try query.int("limit", default: 100, range: 1...1000)
        let follow = try query.bool("follow") || request.headers[.accept]?.contains("text/event-stream") == true
        if follow {
            if filter.afterID == nil, let last = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap({ Int($0) }) { filter.afterID = last }
            return self.stream(filter, backlog: filter.afterID != nil || filter.since != nil ? limit : 0)
        }
        let entries = self.feed.entries(filter, limit: limit)
        var json = JSONObjectWriter()
        json.int("next_id", self.feed.nextID)
        json.raw("events", "[" + entries.map(Self.withID).joined(separator: ",") + "]")
        return JSONResponse.ok(json.finish())
    }

    /// The event's JSON with its feed id first.
    static func withID(_ entry: FeedEntry) -> String {
        "{\"id\":\(entry.id)," + entry.json.dropFirst()
    }

    /// Server-sent events: the backlog asked for, then each new event as it happens, with a
    /// comment line every `heartbeat` so that a dead reader is noticed.
    func stream(_ filter: FeedFilter, backlog: Int) -> Response {
        let feed = self.feed
        let heartbeat = self.heartbeat
        // Following starts before the backlog is read: nothing falls between the two.
        let live = feed.follow()
        let earlier = backlog > 0 ? feed.entries(filter, limit: backlog) : []
        let body = ResponseBody { writer in
            enum Item: Sendable {
                case entry(FeedEntry)
                case beat
            }
            let (items, continuation) = AsyncStream<Item>.makeStream(bufferingPolicy: .bufferingNewest(4096))
            var lastID = earlier.last?.id ?? (filter.afterID ?? 0)
            try await writer.write(ByteBuffer(string: ": smtpguard events\nretry: 2000\n\n"))
            for entry in earlier { try await writer.write(ByteBuffer(string: Self.sse(entry))) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await entry in live { continuation.yield(.entry(entry)) }
                    continuation.finish()
                }
                group.addTask {
                    while !Task.isCancelled {
                        try await Task.sleep(for: heartbeat)
                        continuation.yield(.beat)
                    }
                }
                defer { group.cancelAll() }
                for await item in items {
                    switch item {
                    case .entry(let entry):
                        guard entry.id > lastID, filter.matches(entry) else { continue }
                        lastID = entry.id
                        try await writer.write(ByteBuffer(string: Self.sse(entry)))
                    case .beat:
                        try await writer.write(ByteBuffer(string: ": alive\n\n"))
                    }
                }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: body)
    }

    static func sse(_ entry: FeedEntry) -> String {
        "id: \(entry.id)\nevent: \(entry.kind)\ndata: \(withID(entry))\n\n"
    }

    // MARK: - Statistics

    func statistics(_ request: Request) throws -> Response {
        let query = try Query(request, allowed: ["period", "top", "timeline"])
        var periods: [Duration] = []
        for text in (query["period"] ?? "1h").split(separator: ",") {
            guard let period = parseDuration(String(text)), period > .zero, period <= .seconds(86_400) else {
                throw APIError.badRequest("period: \"\(String(text).logSafe)\" is not a duration from 1m to 24h (e.g. 15m, 1h, 24h)")
            }
            periods.append(period)
        }
        guard periods.count <= 10 else { throw APIError.badRequest("period: at most 10 periods") }
        let top = try query.int("top", default: 10, range: 1...100)
        let timeline = try query.int("timeline", default: 0, range: 0...StatsBook.minutesKept)
        let now = self.guardEngine.clock.now()
        var json = JSONObjectWriter()
        json.string("now", now.iso8601)
        let summaries = periods.map { period -> String in
            let summary = self.stats.summary(period: period, now: now, top: top)
            var item = JSONObjectWriter()
            item.string("period", period.compactText)
            item.int("seconds", Int(period.wholeSeconds))
            item.int("attempts", summary.attempts)
            item.int("successes", summary.successes)
            item.int("failures", summary.failures)
            item.int("refused", summary.refused)
            item.int("bans", summary.bans)
            item.int("alerts", summary.alerts)
            item.raw("top_ips", Self.json(summary.topIPs))
            item.raw("top_prefixes", Self.json(summary.topPrefixes))
            item.raw("top_usernames", Self.json(summary.topUsernames))
            return item.finish()
        }
        json.raw("periods", "[" + summaries.joined(separator: ",") + "]")
        var active = JSONObjectWriter()
        let bans = self.guardEngine.activeBans()
        for scope in BanScope.allCases { active.int(scope.rawValue, bans.count { $0.key.scope == scope }) }
        active.int("total", bans.count)
        json.raw("active_bans", active.finish())
        if timeline > 0 {
            let points = self.stats.timeline(minutes: timeline, now: now).map { point -> String in
                var item = JSONObjectWriter()
                item.string("minute", point.minute.iso8601)
                item.int("attempts", point.attempts)
                item.int("failures", point.failures)
                item.int("refused", point.refused)
                return item.finish()
            }
            json.raw("timeline", "[" + points.joined(separator: ",") + "]")
        }
        return JSONResponse.ok(json.finish())
    }

    static func json(_ top: [StatsSummary.Top]) -> String {
        "["
            + top.map { entry in
                var item = JSONObjectWriter()
                item.string("key", entry.key)
                item.int("failures", entry.failures)
                return item.finish()
            }.joined(separator: ",") + "]"
    }

    // MARK: - Alerts

    func listAlerts(_ request: Request) throws -> Response {
        let query = try Query(request, allowed: ["since", "kind", "limit"])
        let kinds = try query.set("kind", allowed: ["weak_credential_accepted", "possible_compromise", "distributed_attack", "attack_volume"])
        let since = try query.time("since", now: self.guardEngine.clock.now())
        let limit = try query.int("limit", default: 100, range: 1...1000)
        let alerts = self.alerts.alerts(since: since, kinds: kinds, limit: limit).map { alert -> String in
            var item = JSONObjectWriter()
            item.string("time", alert.time.iso8601)
            alert.writeFields(into: &item)
            return item.finish()
        }
        return JSONResponse.ok("{\"alerts\":[" + alerts.joined(separator: ",") + "]}")
    }

    // MARK: - Trusted networks

    func listTrusted(_ request: Request) async throws -> Response {
        _ = try Query(request, allowed: [])
        let entries = await self.trusted.entries().map(Self.json)
        return JSONResponse.ok("{\"networks\":[" + entries.joined(separator: ",") + "]}")
    }

    struct TrustedRequest: Decodable {
        var network: String
        var comment: String?
    }

    func addTrusted(_ request: Request) async throws -> Response {
        _ = try Query(request, allowed: [])
        let body: TrustedRequest = try await self.decode(request)
        guard let network = IPNetwork(body.network) else {
            throw APIError.badRequest("network: \"\(body.network.logSafe)\" is not an address or network (e.g. 192.0.2.0/24, 2001:db8::/32)")
        }
        let comment = body.comment ?? ""
        guard comment.count <= 200, !comment.contains(where: { $0.asciiValue.map { $0 < 0x20 } == true }) else {
            throw APIError.badRequest("comment: at most 200 characters on one line")
        }
        let entry: TrustedNetworkBook.Entry
        do {
            entry = try await self.trusted.add(network, comment: comment, now: self.guardEngine.clock.now())
        } catch {
            throw APIError.stateUnavailable(error, doing: "adding trusted network \(network)", logger: self.logger)
        }
        self.logger.notice("admin API: trusted network \(network) added")
        return JSONResponse.make(entry.origin == .api ? .created : .ok, Self.json(entry))
    }

    func removeTrusted(_ request: Request, context: AdminRequestContext) async throws -> Response {
        _ = try Query(request, allowed: [])
        let text = Self.catchAll(context)
        guard let network = IPNetwork(text) else { throw APIError.badRequest("\"\(text.logSafe)\" is not an address or network") }
        let removal: TrustedNetworkBook.Removal
        do {
            removal = try await self.trusted.remove(network)
        } catch {
            throw APIError.stateUnavailable(error, doing: "removing trusted network \(network)", logger: self.logger)
        }
        switch removal {
        case .removed:
            self.logger.notice("admin API: trusted network \(network) removed")
            return JSONResponse.ok("{\"removed\":\"\(network)\"}")
        case .notFound:
            throw APIError.notFound("\(network) is not a trusted network")
        case .configured:
            throw APIError(.conflict, "\(network) is trusted by the configuration file (guard.trusted_networks): remove it there and restart")
        }
    }

    static func json(_ entry: TrustedNetworkBook.Entry) -> String {
        var json = JSONObjectWriter()
        json.string("network", entry.network.description)
        json.string("origin", entry.origin.rawValue)
        json.string("comment", entry.comment)
        if let added = entry.added { json.string("added", added.iso8601) }
        return json.finish()
    }

    // MARK: - Metrics

    func scrape(_ request: Request) throws -> Response {
        _ = try Query(request, allowed: [])
        self.metrics.updateActiveBans(self.guardEngine.activeBans())
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: self.registry.exposition())))
    }

    // MARK: - Helpers

    /// The rest of the path after a `**` route, percent-decoded (`10.0.0.0/24` or `10.0.0.0%2F24`).
    static func catchAll(_ context: AdminRequestContext) -> String {
        let raw = context.parameters.getCatchAll().joined(separator: "/")
        return raw.removingPercentEncoding ?? raw
    }

    /// The JSON body as `T`; a body too large, not JSON, or not of the expected shape is a 400
    /// that says what and where.
    func decode<T: Decodable>(_ request: Request) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: self.maxBodySize)
        } catch {
            throw APIError.badRequest("body: larger than \(self.maxBodySize) bytes (admin.max_body_size)")
        }
        guard buffer.readableBytes > 0 else { throw APIError.badRequest("body: empty; expected a JSON object") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw APIError.badRequest("body: \(Self.explain(error))")
        }
    }

    static func explain(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.isEmpty ? "" : codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") + ": "
        }
        switch error {
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "not valid JSON" }
            return "\(path(context.codingPath))\(context.debugDescription)"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath))missing field \"\(key.stringValue)\""
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath))expected \(Self.name(of: type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath))expected \(Self.name(of: type)), got null"
        @unknown default:
            return "not of the expected shape"
        }
    }

    static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        default: return "an object"
        }
    }
}

/// A duration in a request body: seconds as a number, or text such as "90s", "2h", "7d".
struct FlexibleDuration: Decodable {
    var value: Duration

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let seconds = try? container.decode(Int.self) {
            self.value = .seconds(seconds)
        } else if let text = try? container.decode(String.self), let duration = parseDuration(text) {
            self.value = duration
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected seconds or a duration such as \"2h\"")
        }
    }
}
