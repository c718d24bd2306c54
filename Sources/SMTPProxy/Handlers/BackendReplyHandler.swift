// Reads the backend's byte stream into whole SMTP replies and hands them to the session.
// A malformed reply, an over-long line or a bare newline from the backend ends the session.

import NIOCore
import NIOTLS
import SMTPWire

final class BackendReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// The longest reply line accepted from the backend (RFC 5321: 512; EHLO lines of real
    /// servers stay far below this).
    static let maxReplyLine = 4096

    private let session: ClientSessionHandler
    private var reader = SMTPReplyReader(maxLine: BackendReplyHandler.maxReplyLine)

    init(session: ClientSessionHandler) {
        self.session = session
    }

    /// Bytes received and not yet made into a reply (a partial line or reply).
    var hasBufferedInput: Bool { self.reader.hasBufferedInput }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        self.reader.append(&incoming)
        do {
            while let reply = try self.reader.next() { self.session.backendReplied(reply) }
        } catch {
            switch error {
            case .malformed(let reason): self.session.backendProtocolError("malformed reply from the backend (\(reason))")
            case .tooLong: self.session.backendProtocolError("the backend sent a reply line over \(Self.maxReplyLine) bytes")
            case .bareNewline: self.session.backendProtocolError("the backend sent a bare CR or LF")
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.session.flushClient()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.session.backendClosed()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.session.backendWritabilityChanged(context.channel.isWritable)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            self.session.backendTLSEstablished()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Mostly TLS: a certificate that fails verification, a failed handshake.
        self.session.backendProtocolError("backend connection error: \(error)")
        context.close(promise: nil)
    }
}
