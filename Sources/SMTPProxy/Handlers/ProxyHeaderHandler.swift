// First in the pipeline of a connection from a trusted load balancer: takes the PROXY
// protocol header, tells the session who the real client is, passes on whatever followed the
// header, and steps out of the pipeline. A connection whose header does not come in time or
// is malformed is closed.

import GuardCore
import Logging
import NIOCore
import SMTPWire

/// The header has been read: the session may begin, as this client.
struct ProxyHeaderReceived {
    var header: ProxyHeader.Parsed
}

final class ProxyHeaderHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let timeout: TimeAmount = .seconds(10)
    private var buffer = ByteBuffer()
    private var timer: Scheduled<Void>?
    private var done = false
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let logger = self.logger
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.timeout) {
            logger.info("no PROXY protocol header within \(Self.timeout.nanoseconds / 1_000_000_000)s from \(context.channel.remoteAddress?.hostPortText ?? "?"): closed")
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.done else {
            context.fireChannelRead(data)
            return
        }
        var incoming = self.unwrapInboundIn(data)
        self.buffer.writeBuffer(&incoming)
        do {
            guard let header = try ProxyHeader.parse(&self.buffer) else { return }
            self.done = true
            self.timer?.cancel()
            context.fireUserInboundEventTriggered(ProxyHeaderReceived(header: header))
            if self.buffer.readableBytes > 0 { context.fireChannelRead(self.wrapInboundOut(self.buffer)) }
            self.buffer = ByteBuffer()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            self.logger.warning("bad PROXY protocol header from \(context.channel.remoteAddress?.hostPortText ?? "?"): \(error); closed")
            self.done = true
            context.close(promise: nil)
        }
    }
}
