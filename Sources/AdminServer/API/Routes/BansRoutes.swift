// `/api/bans`: list the bans in force (filtered, paged), add one, lift one. Trusts the token
// check before it (BearerAuthMiddleware); talks only to the engine. A trusted address is never
// banned; every key is checked and normalised as the engine keys it.

import GuardCore
import Hummingbird
import Logging

struct BansRoutes: Sendable {
    let guardEngine: Guard
    let body: RequestBodyReader
    let logger: Logger

    var collection: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.get { request, _ in try self.list(request) }
        routes.post { request, _ in try await self.add(request) }
        routes.delete(":scope/**") { request, context in try self.lift(request, context: context) }
        return routes
    }

    func list(_ request: Request) throws -> BanList {
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
        return BanList(total: matching.count, offset: offset, limit: limit, bans: page.map { BanRecord($0, now: now) })
    }

    func add(_ request: Request) async throws -> EditedResponse<BanRecord> {
        _ = try Query(request, allowed: [])
        let body = try await self.body.decode(BanRequest.self, from: request)
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
        return EditedResponse(status: .created, response: BanRecord(ban, now: self.guardEngine.clock.now()))
    }

    func lift(_ request: Request, context: AdminRequestContext) throws -> BanRecord {
        _ = try Query(request, allowed: [])
        let scopeText = context.parameters.get("scope") ?? ""
        guard let scope = BanScope(rawValue: scopeText.lowercased()) else {
            throw APIError.notFound("no such ban scope \"\(scopeText.logSafe)\": expected ip, prefix or username")
        }
        let keyText = context.catchAll
        let key = try Self.banKey(scope: scope, text: keyText, guardEngine: self.guardEngine)
        guard let ban = self.guardEngine.liftBan(key) else {
            throw APIError.notFound("no ban in force for \(scope.rawValue) \(keyText.logSafe)")
        }
        self.logger.notice("admin API: lifted the ban on \(key.scope.rawValue) \(key.description.logSafe)")
        return BanRecord(ban, now: self.guardEngine.clock.now())
    }

    /// The key as the engine keys it: an address grouped by its client prefix, a username
    /// normalised; anything else is a 400 that names it.
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
}
