// `/api/alerts`: the alerts raised, newest first, by time and kind. Trusts the token check
// before it; talks only to the in-memory alert log (loaded from the state at start).

import GuardCore
import Hummingbird

struct AlertsRoutes: Sendable {
    let alerts: AlertLog
    let clock: any GuardClock

    var collection: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.get { request, _ in try self.list(request) }
        return routes
    }

    func list(_ request: Request) throws -> AlertList {
        let query = try Query(request, allowed: ["since", "kind", "limit"])
        let kinds = try query.set("kind", allowed: ["weak_credential_accepted", "possible_compromise", "distributed_attack", "attack_volume"])
        let since = try query.time("since", now: self.clock.now())
        let limit = try query.int("limit", default: 100, range: 1...1000)
        return AlertList(alerts: self.alerts.alerts(since: since, kinds: kinds, limit: limit).map(AlertRecord.init))
    }
}
