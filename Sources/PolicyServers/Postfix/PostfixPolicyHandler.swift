// The connection side of the Postfix policy server: splits lines, hands them to the
// decoder, answers each request with `action=…`. On a protocol error it does what the
// protocol asks: logs, answers nothing, closes. A connection idle past its timeout is closed.

import GuardCore
import Logging
import Metrics
import NIOCore

final class PostfixPolicyHandler: ChannelInboundHandler, @unchecked Sendable {  // used on its channel's event loop only
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Answers a request; the trivial server of the benchmark answers DUNNO without work.
    let answer: @Sendable (PostfixPolicyRequest) -> String
    private var decoder: PostfixPolicyDecoder
    private var pending: ByteBuffer?
    private let logger: Logger
    /// smtpguard_policy_request_duration_seconds{server="postfix"}: the time to decide an answer.
    private let latency: Metrics.Timer?
    private var peer = "-"

    init(maxRequestSize: Int, logger: Logger, latency: Metrics.Timer? = nil, answer: @escaping @Sendable (PostfixPolicyRequest) -> String) {
        self.latency = latency
        self.decoder = PostfixPolicyDecoder(maxRequestSize: maxRequestSize)
        self.logger = logger
        self.answer = answer
    }

    func channelActive(context: ChannelHandlerContext) {
        self.peer = context.remoteAddress.map { address in address.ipAddress.map { "\($0):\(address.port ?? 0)" } ?? "unix socket" } ?? "-"
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        if self.pending == nil {
            self.pending = incoming
        } else {
            self.pending!.writeBuffer(&incoming)
        }
        var out: ByteBuffer?
        while let buffer = self.pending, let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let line = buffer.readableBytesView[buffer.readerIndex..<newline]
            let request: PostfixPolicyRequest?
            do {
                request = try self.decoder.line(line)
            } catch {
                self.fail(context: context, error.message)
                return
            }
            self.pending!.moveReaderIndex(to: newline + 1)
            if let request {
                if out == nil { out = context.channel.allocator.buffer(capacity: 64) }
                out!.writeString("action=")
                let began = ContinuousClock.now
                out!.writeString(self.answer(request))
                self.latency?.record(duration: ContinuousClock.now - began)
                out!.writeString("\n\n")
            }
        }
        if let buffer = self.pending {
            if buffer.readableBytes == 0 {
                self.pending = nil
            } else if buffer.readableBytes > self.decoder.maxRequestSize {
                self.fail(context: context, "a line over \(self.decoder.maxRequestSize) bytes")
                return
            } else {
                self.pending!.discardReadBytes()
            }
        }
        if let out { context.writeAndFlush(self.wrapOutboundOut(out), promise: nil) }
    }

    private func fail(context: ChannelHandlerContext, _ reason: String) {
        self.logger.warning("postfix policy: \(reason) from \(self.peer): connection closed without an answer")
        self.pending = nil
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if self.decoder.isMidRequest || (self.pending?.readableBytes ?? 0) > 0 {
            self.logger.info("postfix policy: \(self.peer) went away in the middle of a request")
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            self.logger.debug("postfix policy: \(self.peer) idle: connection closed")
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("postfix policy: \(self.peer): \(error)")
        context.close(promise: nil)
    }
}
