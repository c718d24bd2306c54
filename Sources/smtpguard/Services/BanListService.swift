// The ban list for external firewalls: `GET /bans` answers the addresses and prefixes banned
// now, one per line (IPv6 clients as their /64, prefix bans as networks), in plain text.
// Username locks are not listed: a firewall cannot act on them.

import GuardCore
import LogWatch
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PolicyServers
import SMTPProxy
import ServiceLifecycle

struct BanListService: Service {
    let address: HostPort
    let guardEngine: Guard
    let group: any EventLoopGroup
    let logger: Logger

    func run() async throws {
        let guardEngine = self.guardEngine
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: self.group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(BanListHandler(guardEngine: guardEngine))
                    }
                }
                .bind(listening: self.address)
        } catch {
            throw StartupError("firewall.banlist_listen \(self.address): cannot listen (\(error))")
        }
        self.logger.info("ban list on http://\(self.address)/bans")
        try? await gracefulShutdown()
        try? await channel.close()
    }

    /// The list as text.
    static func text(_ bans: [Ban], policy: GuardPolicy) -> String {
        var lines = Set<String>()
        for ban in bans { if let entry = firewallEntry(for: ban.key, policy: policy) { lines.insert(entry.text) } }
        return lines.sorted().map { $0 + "\n" }.joined()
    }
}

final class BanListHandler: ChannelInboundHandler, @unchecked Sendable {  // used on its channel's event loop only
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let guardEngine: Guard
    private var head: HTTPRequestHead?

    init(guardEngine: Guard) { self.guardEngine = guardEngine }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            let status: HTTPResponseStatus
            let body: String
            if head.method != .GET && head.method != .HEAD {
                (status, body) = (.methodNotAllowed, "only GET\n")
            } else if path == "/bans" || path == "/bans.txt" {
                (status, body) = (.ok, BanListService.text(self.guardEngine.activeBans(), policy: self.guardEngine.policy))
            } else {
                (status, body) = (.notFound, "not found: the ban list is at /bans\n")
            }
            HTTPResponder.respond(context: context, request: head, status: status, body: body, contentType: "text/plain; charset=utf-8")
        }
    }
}

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields (the
/// admin token, webhook secret, database URL and policy credentials live in them).
extension BanListService: CustomStringConvertible {
    var description: String { "BanListService" }
}
