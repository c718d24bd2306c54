// `/api/stats`: per period (at most ten, each up to 24h) the figures and top failing keys, the
// bans in force, and optionally a per-minute timeline. Trusts the token check before it;
// talks to the statistics book and the engine.

import GuardCore
import Hummingbird

struct StatsRoutes: Sendable {
    let guardEngine: Guard
    let stats: StatsRecorder

    var collection: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.get { request, _ in try self.statistics(request) }
        return routes
    }

    func statistics(_ request: Request) throws -> StatsResponse {
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
        return StatsResponse(
            now: now.iso8601,
            periods: periods.map { StatsPeriod(self.stats.summary(period: $0, now: now, top: top)) },
            activeBans: ActiveBans(self.guardEngine.activeBans()),
            timeline: timeline > 0 ? self.stats.timeline(minutes: timeline, now: now).map(TimelinePoint.init) : nil)
    }
}
