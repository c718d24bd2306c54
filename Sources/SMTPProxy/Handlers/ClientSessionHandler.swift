// ClientSessionHandler: the thin handler around SMTPSessionStateMachine for one client
// connection. At connect it asks the connection registry and the engine and carries out
// ConnectionAdmission's answer (before any backend connection); then it frames the client's
// bytes, hands the machine its events (with the facts only a channel knows: bytes waiting,
// who is writable) and carries out the machine's actions (ClientSessionHandler+Actions.swift).
// No decision about SMTP is made here.

import GuardCore
import Logging
import Metrics
import NIOCore
import NIOTLS
import NIOPosix
import NIOSSL
import SMTPWire
import Synchronization

final class ClientSessionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Client bytes buffered while the session is not reading (AUTH in flight, DATA not yet
    /// answered) before the guard stops reading from the socket: 64 KiB, or more if the
    /// configured line limits need it (a line must fit to be framed).
    let maxBufferedInput: Int
    /// How long a closing client may take to receive its last reply.
    static let closeGrace: TimeAmount = .seconds(10)

    let shared: ProxyContext
    /// The shared logger with this session's metadata, made only when something is logged.
    var logger: Logger {
        var logger = self.shared.logger
        logger[metadataKey: "smtp.session"] = .string(self.sessionID)
        if let address = self.clientAddress { logger[metadataKey: "client.ip"] = .string(address.description) }
        return logger
    }
    var machine: SMTPSessionStateMachine?
    var context: ChannelHandlerContext?
    var backend: (any Channel)?
    var inbound = ByteBuffer()
    var framer = SMTPLineFramer()
    /// When each running timer is due. A timer restarted before it fires only moves its
    /// deadline; the scheduled task, when it runs, re-arms itself for the remainder. So a
    /// command costs a clock read, not a timer heap insertion.
    var timers = SessionTimers()
    var clientAddress: IPAddress?
    /// The address the connection limits count this client under (IPv6: its /64).
    var registryKey: IPAddress?
    var admitted = false
    var processing = false
    var clientNeedsFlush = false
    var backendNeedsFlush = false
    var backendWritable = true
    /// A read the channel asked for while the session did not want more input.
    var heldRead = false
    /// The engine's answers to the batch of actions being carried out, for after it.
    var answers: [(inout SMTPSessionStateMachine) -> [SessionAction]] = []
    /// When the last AUTH credentials went to the backend (for the penalty watch).
    var credentialsSentAt: NIODeadline?
    let sessionID: String
    /// The client came to an implicit TLS listener (a TLS handler is already in front).
    let implicitTLS: Bool
    /// The connection is a trusted load balancer's: the session begins once its PROXY header
    /// (read by ProxyHeaderHandler, in front) has named the real client.
    let awaitsProxyHeader: Bool

    init(shared: ProxyContext, implicitTLS: Bool = false, awaitsProxyHeader: Bool = false) {
        self.shared = shared
        self.implicitTLS = implicitTLS
        self.awaitsProxyHeader = awaitsProxyHeader
        self.maxBufferedInput = max(65_536, shared.session.maxAuthLine, shared.session.maxDataLine, shared.session.maxCommandLine) + 2
        self.sessionID = SessionIDs.next()
    }

    // MARK: - Client channel events

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        guard let remote = context.channel.remoteAddress, let address = IPAddress(remote) else {
            self.logger.warning("client connection without a usable remote address: closed")
            context.close(promise: nil)
            return
        }
        if self.awaitsProxyHeader { return }  // see userInboundEventTriggered
        self.begin(context: context, self.candidate(remote: remote, address: address, local: context.channel.localAddress))
    }

    /// The client is known: admit or refuse it (ConnectionAdmission decides), then start
    /// the session.
    func begin(context: ChannelHandlerContext, _ candidate: ConnectionAdmission.Candidate) {
        self.clientAddress = candidate.address
        let key = self.shared.guardEngine.clientKey(candidate.address)
        self.registryKey = key
        let capacity: ConnectionAdmission.Capacity
        switch self.shared.registry.admit(key, channel: context.channel) {
        case .admitted:
            self.admitted = true
            capacity = .available
        case .tooManyTotal: capacity = .full(limit: self.shared.registry.maxTotal)
        case .tooManyFromClient: capacity = .clientFull(limit: self.shared.registry.maxPerClient)
        }
        let engine = self.shared.guardEngine
        switch self.shared.admission.decide(candidate, capacity: capacity, ban: { engine.connectionBan(for: candidate.address) }) {
        case .refuse(let refusal):
            self.log(refusal.level, refusal.message, metadata: refusal.metadata.mapValues { .string($0) })
            guard let reply = refusal.reply else {
                context.close(promise: nil)
                return
            }
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: reply.encoded))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        case .admit(let client):
            var machine = SMTPSessionStateMachine(configuration: self.shared.session, client: client)
            let actions = machine.clientAdmitted()
            self.machine = machine
            self.run(actions)
            self.flushAll()
            self.readIfWanted()
        }
    }

    func candidate(remote: SocketAddress, address: IPAddress, local: SocketAddress?, balancerItself: Bool = false) -> ConnectionAdmission.Candidate {
        ConnectionAdmission.Candidate(
            address: address, port: UInt16(clamping: remote.port ?? 0),
            localAddress: local.flatMap(IPAddress.init) ?? IPAddress(ipv4: 0x7F00_0001), localPort: UInt16(clamping: local?.port ?? 0),
            balancerItself: balancerItself, implicitTLS: self.implicitTLS)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        guard self.machine != nil else { return }
        if self.inbound.readableBytes == 0 {
            self.inbound = incoming
        } else {
            self.inbound.writeBuffer(&incoming)
        }
        self.processInput()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.flushAll()
        self.readIfWanted()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if self.machine != nil { self.send { $0.clientClosed() } }
        self.timers.cancelAll()
        if self.admitted, let key = self.registryKey {
            self.shared.registry.release(key, channel: context.channel)
            self.admitted = false
        }
        self.backend?.close(promise: nil)
        self.backend = nil
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.machine?.isAwaitingTLS == true {
            self.send { $0.tlsFailed("\(error)") }
            self.flushAll()
            return
        }
        self.logger.debug("client connection error: \(error)")
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let proxied = event as? ProxyHeaderReceived {
            guard self.awaitsProxyHeader, self.machine == nil, !self.admitted else { return }
            let remote = context.channel.remoteAddress
            let local = context.channel.localAddress
            switch proxied.header {
            case .proxied(let source, let sourcePort, let destination, let destinationPort):
                self.begin(
                    context: context,
                    ConnectionAdmission.Candidate(
                        address: source, port: sourcePort, localAddress: destination, localPort: destinationPort, implicitTLS: self.implicitTLS))
            case .local:
                guard let remote, let address = IPAddress(remote) else { return }
                self.begin(context: context, self.candidate(remote: remote, address: address, local: local, balancerItself: true))
            }
            return
        }
        guard let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let version = (try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).tlsVersion)??.text ?? "TLS"
        self.send { $0.tlsEstablished(version: version) }
        self.processInput()
        self.flushAll()
        self.readIfWanted()
    }

    // MARK: - Backend events (called by BackendReplyHandler on the same event loop)

    func backendReplied(_ reply: SMTPReply) {
        let waiting = self.inbound.readableBytes > 0
        self.send { $0.backendReplyReceived(reply, clientWaiting: waiting) }
        self.processInput()
        self.readIfWanted()
    }

    func backendProtocolError(_ reason: String) {
        guard self.machine?.isClosed == false else {
            self.logger.debug("after the session: \(reason)")  // e.g. an unclean TLS close after QUIT
            return
        }
        self.logger.error("\(reason): session closed")
        self.send { $0.backendClosed() }
        self.flushAll()
    }

    func backendTLSEstablished() {
        self.send { $0.backendTLSEstablished() }
        self.processInput()
        self.flushAll()
        self.readIfWanted()
    }

    func backendClosed() {
        self.backend = nil
        self.send { $0.backendClosed() }
        self.flushAll()
    }

    func backendWritabilityChanged(_ writable: Bool) {
        self.backendWritable = writable
        self.readIfWanted()
    }

    func flushClient() {
        self.flushAll()
    }

    // MARK: - Input

    /// Hands the machine every buffered line it is ready for.
    func processInput() {
        guard !self.processing else { return }
        self.processing = true
        defer { self.processing = false }
        while self.machine?.wantsInput == true {
            let limit = self.machine!.lineLimit(peek: self.inbound)
            let detectTLS = self.machine!.expectsCommand
            guard let framed = self.framer.next(from: &self.inbound, limit: limit, detectTLS: detectTLS) else { break }
            let more = self.inbound.readableBytes > 0
            self.send { $0.clientLineReceived(framed, more: more) }
        }
        if self.inbound.readableBytes == 0 {
            // Nothing waiting: let the read buffer go, so that an idle client holds no memory
            // for its next read (the next one is taken as it comes).
            self.inbound = Self.noInput
        } else if self.inbound.readerIndex > 16_384 {
            self.inbound.discardReadBytes()
        }
    }

    static let noInput = ByteBuffer()

    /// Back-pressure: reads pass while the buffered input is small and the backend keeps up;
    /// otherwise they wait until `readIfWanted` lets them go.
    var mayRead: Bool {
        self.inbound.readableBytes < self.maxBufferedInput && self.backendWritable && (self.context?.channel.isWritable ?? true)
    }

    /// A client that does not read its replies stops the flow both ways: the guard neither
    /// reads from it nor from the backend until it catches up.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        self.backend?.setOption(ChannelOptions.autoRead, value: writable).whenFailure { _ in }
        if writable {
            if let backend = self.backend { backend.read() }
            self.readIfWanted()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if self.mayRead {
            context.read()
        } else {
            self.heldRead = true
        }
    }

    func readIfWanted() {
        guard self.heldRead, self.mayRead, let context = self.context else { return }
        self.heldRead = false
        context.read()
    }
}
