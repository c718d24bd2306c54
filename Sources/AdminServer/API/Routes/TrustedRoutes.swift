// `/api/trusted`: the trusted networks (the configuration's and those added here), add one,
// remove one. Trusts the token check before it; talks to the trusted-network book, which
// writes the state first. A state failure is a 503 with a fixed message (APIError), never the
// database's text.

import GuardCore
import GuardStore
import Hummingbird
import Logging

struct TrustedRoutes: Sendable {
    let trusted: TrustedNetworkBook
    let clock: any GuardClock
    let body: RequestBodyReader
    let logger: Logger

    var collection: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.get { request, _ in try await self.list(request) }
        routes.post { request, _ in try await self.add(request) }
        routes.delete("**") { request, context in try await self.remove(request, context: context) }
        return routes
    }

    func list(_ request: Request) async throws -> TrustedNetworkList {
        _ = try Query(request, allowed: [])
        return TrustedNetworkList(networks: await self.trusted.entries().map(TrustedNetworkRecord.init))
    }

    func add(_ request: Request) async throws -> EditedResponse<TrustedNetworkRecord> {
        _ = try Query(request, allowed: [])
        let body = try await self.body.decode(TrustedNetworkRequest.self, from: request)
        guard let network = IPNetwork(body.network) else {
            throw APIError.badRequest("network: \"\(body.network.logSafe)\" is not an address or network (e.g. 192.0.2.0/24, 2001:db8::/32)")
        }
        let comment = body.comment ?? ""
        guard comment.count <= 200, !comment.contains(where: { $0.asciiValue.map { $0 < 0x20 } == true }) else {
            throw APIError.badRequest("comment: at most 200 characters on one line")
        }
        let entry: TrustedNetworkBook.Entry
        do {
            entry = try await self.trusted.add(network, comment: comment, now: self.clock.now())
        } catch {
            throw APIError.stateUnavailable(error, doing: "adding trusted network \(network)", logger: self.logger)
        }
        self.logger.notice("admin API: trusted network \(network) added")
        return EditedResponse(status: entry.origin == .api ? .created : .ok, response: TrustedNetworkRecord(entry))
    }

    func remove(_ request: Request, context: AdminRequestContext) async throws -> TrustedNetworkRemoval {
        _ = try Query(request, allowed: [])
        let text = context.catchAll
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
            return TrustedNetworkRemoval(removed: network.description)
        case .notFound:
            throw APIError.notFound("\(network) is not a trusted network")
        case .configured:
            throw APIError(.conflict, "\(network) is trusted by the configuration file (guard.trusted_networks): remove it there and restart")
        }
    }
}
