// The request context of the admin server: Hummingbird's core context, the client's
// address (for the log of refused requests) and the encoder of every JSON answer.

import Hummingbird
import NIOCore

public struct AdminRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    public var responseEncoder: AdminResponseEncoder { AdminResponseEncoder() }
}
