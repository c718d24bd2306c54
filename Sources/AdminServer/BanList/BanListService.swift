// The ban list for external firewalls (`firewall.banlist_listen`): `GET /bans` (or
// `/bans.txt`) answers the addresses and prefixes banned now, one per line, in plain text;
// HEAD answers its head; another path is 404, another method 405. What the lines say (IPv6
// clients as their /64, prefix bans as networks, no username locks) is the firewall's
// business: the list comes from `text` (LogWatch's banListText). No token: it holds only
// what any firewall fed from it shows. Served by Hummingbird on the admin server's listener
// (HTTPListener: IPv6 addresses IPv6-only).

import GuardCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

public struct BanListService: Service {
    let address: HostPort
    let text: @Sendable () -> String
    let logger: Logger

    public init(address: HostPort, text: @escaping @Sendable () -> String, logger: Logger) {
        self.address = address
        self.text = text
        self.logger = logger
    }

    public func run() async throws {
        try await HTTPListener(name: "ban list", address: self.address, logger: self.logger).run(
            Self.router(text: self.text).buildResponder(),
            bindFailed: { BanListStartError(description: "firewall.banlist_listen \(self.address): cannot listen (\($0))") },
            listening: { _ in self.logger.info("ban list on http://\(self.address)/bans") })
    }

    /// GET (and HEAD) /bans and /bans.txt; the other answers come from BanListAnswers.
    static func router(text: @escaping @Sendable () -> String) -> Router<BasicRequestContext> {
        let router = Router(options: .autoGenerateHeadEndpoints)
        router.add(middleware: BanListAnswers())
        for path in ["/bans", "/bans.txt"] {
            router.get(RouterPath(path)) { request, _ -> Response in
                // The router also takes "/bans/": the list is only at the exact path.
                guard request.uri.path == path else { return BanListAnswers.notFound }
                return BanListAnswers.plain(.ok, text())
            }
        }
        return router
    }
}

/// The answers besides the list: 405 for a method other than GET and HEAD, 404 elsewhere.
struct BanListAnswers: RouterMiddleware {
    typealias Context = BasicRequestContext

    static var notFound: Response { Self.plain(.notFound, "not found: the ban list is at /bans\n") }

    static func plain(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get || request.method == .head else { return Self.plain(.methodNotAllowed, "only GET\n") }
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            return request.method == .head ? Self.notFound.createHeadResponse() : Self.notFound
        }
    }
}

public struct BanListStartError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields.
extension BanListService: CustomStringConvertible {
    public var description: String { "BanListService" }
}
