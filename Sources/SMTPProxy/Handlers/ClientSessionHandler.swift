// ClientSessionHandler: the thin handler around SMTPSessionStateMachine for one client
// connection. It admits or refuses the client at connect (limits, bans: before any
// backend connection), opens the backend connection on the same event loop, frames the
// client's bytes, and carries out the machine's actions: writes, timers, engine calls,
// event records, closes. No decision about SMTP is made here.

import GuardCore
import Logging
import NIOCore
import NIOPosix
import SMTPWire

/// What every session of one proxy shares.
public struct ProxyContext: Sendable {
    public var configuration: ProxyConfiguration
    public var session: SessionConfiguration
    public var guardEngine: Guard
    public var events: any EventSink
    public var registry: ConnectionRegistry
    public var logger: Logger
    public var connector: any BackendConnector

    public init(
        configuration: ProxyConfiguration, session: SessionConfiguration, guardEngine: Guard, events: any EventSink,
        registry: ConnectionRegistry, logger: Logger, connector: any BackendConnector = TCPBackendConnector()
    ) {
        self.configuration = configuration
        self.session = session
        self.guardEngine = guardEngine
        self.events = events
        self.registry = registry
        self.logger = logger
        self.connector = connector
    }
}

/// Opens the connection to the backend on the client's event loop.
public protocol BackendConnector: Sendable {
    func connect(to target: HostPort, timeout: Duration, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel>
}

/// The real one: TCP to the configured backend.
public struct TCPBackendConnector: BackendConnector {
    public init() {}

    public func connect(to target: HostPort, timeout: Duration, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.nanoseconds(timeout.nanosecondsClamped))
            .connect(host: target.host, port: target.port)
    }
}

final class ClientSessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Client bytes buffered while the session is not reading (AUTH in flight, DATA not yet
    /// answered) before the guard stops reading from the socket.
    static let maxBufferedInput = 65_536

    private let shared: ProxyContext
    private var logger: Logger
    private var machine: SMTPSessionStateMachine?
    private var context: ChannelHandlerContext?
    private var backend: (any Channel)?
    private var inbound = ByteBuffer()
    private var framer = SMTPLineFramer()
    private var timers: [SessionTimer: Scheduled<Void>] = [:]
    private var clientAddress: IPAddress?
    private var admitted = false
    private var processing = false
    private var clientNeedsFlush = false
    private var backendNeedsFlush = false
    private var lastClientWrite: EventLoopFuture<Void>?
    private var backendWritable = true
    private let sessionID: String

    init(shared: ProxyContext) {
        self.shared = shared
        self.logger = shared.logger
        self.sessionID = String(UInt64.random(in: 0...UInt64.max) & 0xFFFF_FFFF_FFFF, radix: 16)
        self.logger[metadataKey: "smtp.session"] = .string(self.sessionID)
    }

    // MARK: - Client channel events

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        guard let remote = context.channel.remoteAddress, let address = remote.ipAddress.flatMap(IPAddress.init) else {
            self.logger.warning("client connection without a usable remote address: closed")
            context.close(promise: nil)
            return
        }
        self.clientAddress = address
        self.logger[metadataKey: "client.ip"] = .string(address.description)
        let hostname = self.shared.session.hostname

        switch self.shared.registry.admit(address, channel: context.channel) {
        case .admitted:
            self.admitted = true
        case .tooManyTotal:
            self.logger.warning("connection limit reached (\(self.shared.registry.maxTotal) open): client refused")
            self.refuse(SMTPReply(code: 421, "4.7.0 \(hostname) Error: too many connections, try again later"), context: context)
            return
        case .tooManyFromClient:
            self.logger.info("too many connections from this client (\(self.shared.registry.maxPerClient)): refused")
            self.refuse(SMTPReply(code: 421, "4.7.0 \(hostname) Error: too many connections from your address"), context: context)
            return
        }
        if let ban = self.shared.guardEngine.connectionBan(for: address) {
            self.logger.info(
                "banned client refused at connect",
                metadata: ["guard.ban.scope": .string(ban.key.scope.rawValue), "guard.ban.until": .string(ban.until.iso8601)])
            let reply =
                self.shared.configuration.banReplyCode == 421
                ? SMTPReply(code: 421, "4.7.0 \(hostname) Service not available, try again later")
                : SMTPReply(code: 554, "5.7.1 \(hostname) Access denied")
            self.refuse(reply, context: context)
            return
        }
        let local = context.channel.localAddress
        let info = ClientInfo(
            address: address, port: UInt16(clamping: remote.port ?? 0),
            localAddress: local?.ipAddress.flatMap(IPAddress.init) ?? IPAddress(ipv4: 0x7F00_0001),
            localPort: UInt16(clamping: local?.port ?? 0),
            authAllowed: self.shared.configuration.authNetworks.contains(address))
        var machine = SMTPSessionStateMachine(configuration: self.shared.session, client: info)
        let actions = machine.start()
        self.machine = machine
        self.run(actions)
        self.flushAll()
        self.readIfWanted()
    }

    private func refuse(_ reply: SMTPReply, context: ChannelHandlerContext) {
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: reply.encoded))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
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
        for (_, timer) in self.timers { timer.cancel() }
        self.timers = [:]
        if self.admitted, let address = self.clientAddress {
            self.shared.registry.release(address, channel: context.channel)
            self.admitted = false
        }
        self.backend?.close(promise: nil)
        self.backend = nil
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("client connection error: \(error)")
        context.close(promise: nil)
    }

    // MARK: - Backend events (called by BackendReplyHandler on the same event loop)

    func backendReplied(_ reply: SMTPReply) {
        self.send { $0.backendReply(reply) }
        self.processInput()
        self.readIfWanted()
    }

    func backendProtocolError(_ reason: String) {
        self.logger.error("\(reason): session closed")
        self.send { $0.backendClosed() }
        self.flushAll()
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
    private func processInput() {
        guard !self.processing else { return }
        self.processing = true
        defer { self.processing = false }
        while let machine = self.machine, machine.wantsInput {
            let limit = machine.lineLimit(peek: self.inbound)
            guard let framed = self.framer.next(from: &self.inbound, limit: limit) else { break }
            self.send { $0.clientLine(framed) }
        }
        if self.inbound.readerIndex > 16_384 { self.inbound.discardReadBytes() }
    }

    private func readIfWanted() {
        guard let context = self.context, let machine = self.machine, !machine.isClosed else { return }
        if self.inbound.readableBytes < Self.maxBufferedInput && self.backendWritable {
            context.read()
        }
    }

    // MARK: - Carrying out actions

    private func send(_ event: (inout SMTPSessionStateMachine) -> [SessionAction]) {
        guard var machine = self.machine else { return }
        let actions = event(&machine)
        self.machine = machine
        self.run(actions)
    }

    private func run(_ actions: [SessionAction]) {
        for action in actions {
            self.run(action)
        }
    }

    private func run(_ action: SessionAction) {
        switch action {
        case .connectBackend:
            self.connectBackend()
        case .sendToBackend(let bytes):
            guard let backend = self.backend else { return }
            backend.write(bytes, promise: nil)
            self.backendNeedsFlush = true
        case .sendToClient(let reply):
            guard let context = self.context else { return }
            let future = context.write(self.wrapOutboundOut(ByteBuffer(string: reply.encoded)))
            self.lastClientWrite = future
            self.clientNeedsFlush = true
        case .decide(var attempt):
            attempt.time = self.shared.guardEngine.clock.now()
            let decision = self.shared.guardEngine.decide(attempt)
            self.logger.debug(
                "guard decided",
                metadata: [
                    "auth.outcome": .string(attempt.outcome.rawValue), "guard.decision": .string(decision.verdict.rawValue),
                    "guard.reasons": .string(decision.reasons.map(\.rawValue).joined(separator: ",")),
                    "guard.delay": .string(decision.delay.compactText),
                ])
            self.send { $0.verdictReceived(decision) }
        case .recordAttempt(var attempt, let replyCode, let decision):
            attempt.time = self.shared.guardEngine.clock.now()
            self.shared.events.record(.attempt(AttemptRecord(attempt: attempt, session: self.sessionID, replyCode: replyCode, decision: decision)))
        case .startTimer(let timer, let duration):
            self.timers[timer]?.cancel()
            guard let context = self.context else { return }
            self.timers[timer] = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(duration.nanosecondsClamped)) {
                self.timers[timer] = nil
                self.send { $0.timerFired(timer) }
                self.flushAll()
                self.processInput()
                self.readIfWanted()
            }
        case .cancelTimer(let timer):
            self.timers.removeValue(forKey: timer)?.cancel()
        case .closeBackend:
            // The client must see what it was told before the backend goes (its read may
            // never complete once closed).
            if self.clientNeedsFlush, let context = self.context {
                self.clientNeedsFlush = false
                context.flush()
            }
            if let backend = self.backend {
                self.backend = nil
                if self.backendNeedsFlush {
                    self.backendNeedsFlush = false
                    backend.flush()
                }
                backend.close(promise: nil)
            }
        case .closeClient:
            guard let context = self.context else { return }
            context.flush()
            self.clientNeedsFlush = false
            let closing = self.lastClientWrite ?? context.eventLoop.makeSucceededVoidFuture()
            closing.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        case .log(let level, let message):
            switch level {
            case .info: self.logger.info("\(message)")
            case .warning: self.logger.warning("\(message)")
            case .error: self.logger.error("\(message)", metadata: ["backend": .string(self.shared.configuration.backend.description)])
            case .critical: self.logger.critical("\(message)")
            }
        }
    }

    private func flushAll() {
        if self.clientNeedsFlush, let context = self.context {
            self.clientNeedsFlush = false
            context.flush()
        }
        if self.backendNeedsFlush, let backend = self.backend {
            self.backendNeedsFlush = false
            backend.flush()
        }
    }

    private func connectBackend() {
        guard let context = self.context else { return }
        let target = self.shared.configuration.backend
        let timeout = self.shared.configuration.connectTimeout
        let connect = self.shared.connector.connect(to: target, timeout: timeout, on: context.eventLoop)
        connect.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard self.context != nil, let machine = self.machine, !machine.isClosed else {
                    channel.close(promise: nil)
                    return
                }
                do {
                    try channel.pipeline.syncOperations.addHandler(BackendReplyHandler(session: self))
                } catch {
                    channel.close(promise: nil)
                    self.send { $0.backendConnectFailed("\(error)") }
                    self.flushAll()
                    return
                }
                self.backend = channel
                self.send { $0.backendConnected() }
            case .failure(let error):
                self.send { $0.backendConnectFailed("\(target): \(error)") }
            }
            self.flushAll()
        }
    }
}
