// ClientSessionHandler: the thin handler around SMTPSessionStateMachine for one client
// connection. It admits or refuses the client at connect (limits, bans: before any
// backend connection), opens the backend connection on the same event loop, frames the
// client's bytes, and carries out the machine's actions: writes, timers, engine calls,
// event records, closes. No decision about SMTP is made here.

import GuardCore
import Logging
import Metrics
import NIOCore
import NIOTLS
import NIOPosix
import NIOSSL
import SMTPWire
import Synchronization

/// What every session of one proxy shares.
public struct ProxyContext: Sendable {
    public var configuration: ProxyConfiguration
    public var session: SessionConfiguration
    public var guardEngine: Guard
    public var events: any EventSink
    public var registry: ConnectionRegistry
    public var logger: Logger
    public var connector: any BackendConnector
    /// The guard's certificate (STARTTLS, implicit TLS listeners); nil: no TLS to clients.
    public var tls: TLSContextStore?
    /// TLS to the backend (STARTTLS or implicit); nil: plain.
    public var backendTLS: BackendTLS?
    /// smtpguard_backend_errors_total: sessions ended by trouble with the backend.
    public var backendErrors = Counter(label: "smtpguard_backend_errors_total")
    /// Watches the backend's AUTH answers for a penalty on the guard's own address (set when
    /// `backend.identity` is none: then the backend sees every client as the guard).
    public var penaltyMonitor: BackendPenaltyMonitor?

    public init(
        configuration: ProxyConfiguration, session: SessionConfiguration, guardEngine: Guard, events: any EventSink,
        registry: ConnectionRegistry, logger: Logger, connector: any BackendConnector = TCPBackendConnector(),
        tls: TLSContextStore? = nil, backendTLS: BackendTLS? = nil, penaltyMonitor: BackendPenaltyMonitor? = nil
    ) {
        self.configuration = configuration
        self.session = session
        self.guardEngine = guardEngine
        self.events = events
        self.registry = registry
        self.logger = logger
        self.connector = connector
        self.tls = tls
        self.backendTLS = backendTLS
        self.penaltyMonitor = penaltyMonitor
    }
}

/// Opens the connection to the backend on the client's event loop.
public protocol BackendConnector: Sendable {
    func connect(to target: HostPort, timeout: Duration, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel>
}

/// The real one: TCP to the configured backend. An address given as an IP literal is used
/// as it is; a host name is resolved for each connection (so DNS changes are followed).
/// With `implicitTLS`, TLS starts with the connection (a port 465 style backend).
public struct TCPBackendConnector: BackendConnector {
    let implicitTLS: BackendTLS?

    public init(implicitTLS: BackendTLS? = nil) {
        self.implicitTLS = implicitTLS
    }

    public func connect(to target: HostPort, timeout: Duration, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        let tls = self.implicitTLS
        let bootstrap = ClientBootstrap(group: eventLoop)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.nanoseconds(timeout.nanosecondsClamped))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(tls.makeHandler()) }
                }
            }
        if let address = try? SocketAddress(ipAddress: target.host, port: target.port) {
            return bootstrap.connect(to: address)
        }
        return bootstrap.connect(host: target.host, port: target.port)
    }
}

/// Session ids: a per-process random prefix and a counter (no system call per session).
enum SessionIDs {
    private static let prefix = String(UInt32.random(in: 0x1000...0xFFFF), radix: 16)
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let n = self.counter.wrappingAdd(1, ordering: .relaxed).newValue
        return self.prefix + String(n, radix: 16)
    }
}

/// The session's timers: when each is due, and the task that will look at it.
struct SessionTimers {
    static let count = 7
    var deadlines = InlineArray<7, NIODeadline?>(repeating: nil)
    var tasks = InlineArray<7, (task: Scheduled<Void>, due: NIODeadline)?>(repeating: nil)

    static func index(_ timer: SessionTimer) -> Int {
        switch timer {
        case .backendConnect: return 0
        case .backendReply: return 1
        case .clientIdle: return 2
        case .tarpit: return 3
        case .tlsHandshake: return 4
        case .dataRate: return 5
        case .session: return 6
        }
    }

    mutating func cancelAll() {
        for i in 0..<Self.count {
            self.tasks[i]?.task.cancel()
            self.tasks[i] = nil
            self.deadlines[i] = nil
        }
    }
}

extension IPAddress {
    /// The address of a socket, read from its sockaddr (no text round trip).
    init?(_ socketAddress: SocketAddress) {
        switch socketAddress {
        case .v4(let v4):
            self.init(ipv4: UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6):
            var storage = v6.address.sin6_addr
            let (high, low) = withUnsafeBytes(of: &storage) { raw -> (UInt64, UInt64) in
                (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                 UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
            let address = IPAddress(high: high, low: low)
            // An IPv4-mapped address is the IPv4 address.
            self = address.isIPv4 ? IPAddress(ipv4: UInt32(truncatingIfNeeded: low)) : address
        case .unixDomainSocket:
            return nil
        }
    }
}

final class ClientSessionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Client bytes buffered while the session is not reading (AUTH in flight, DATA not yet
    /// answered) before the guard stops reading from the socket: 64 KiB, or more if the
    /// configured line limits need it (a line must fit to be framed).
    private let maxBufferedInput: Int
    /// How long a closing client may take to receive its last reply.
    static let closeGrace: TimeAmount = .seconds(10)

    private let shared: ProxyContext
    /// The shared logger with this session's metadata, made only when something is logged.
    private var logger: Logger {
        var logger = self.shared.logger
        logger[metadataKey: "smtp.session"] = .string(self.sessionID)
        if let address = self.clientAddress { logger[metadataKey: "client.ip"] = .string(address.description) }
        return logger
    }
    private var machine: SMTPSessionStateMachine?
    private var context: ChannelHandlerContext?
    private var backend: (any Channel)?
    private var inbound = ByteBuffer()
    private var framer = SMTPLineFramer()
    /// When each running timer is due. A timer restarted before it fires only moves its
    /// deadline; the scheduled task, when it runs, re-arms itself for the remainder. So a
    /// command costs a clock read, not a timer heap insertion.
    private var timers = SessionTimers()
    private var clientAddress: IPAddress?
    /// The address the connection limits count this client under (IPv6: its /64).
    private var registryKey: IPAddress?
    private var admitted = false
    private var processing = false
    private var clientNeedsFlush = false
    private var backendNeedsFlush = false
    private var backendWritable = true
    /// A read the channel asked for while the session did not want more input.
    private var heldRead = false
    /// When the last AUTH credentials went to the backend (for the penalty watch).
    private var credentialsSentAt: NIODeadline?
    private let sessionID: String
    /// The client came to an implicit TLS listener (a TLS handler is already in front).
    private let implicitTLS: Bool
    /// The connection is a trusted load balancer's: the session begins once its PROXY header
    /// (read by ProxyHeaderHandler, in front) has named the real client.
    private let awaitsProxyHeader: Bool

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
        let local = context.channel.localAddress
        self.begin(
            context: context, address: address, port: UInt16(clamping: remote.port ?? 0),
            localAddress: local.flatMap(IPAddress.init) ?? IPAddress(ipv4: 0x7F00_0001), localPort: UInt16(clamping: local?.port ?? 0))
    }

    /// The client is known: admit or refuse it, then start the session.
    /// `balancerItself`: a PROXY LOCAL/UNKNOWN connection of the load balancer's own (a health
    /// check): it gets no AUTH, so failures there can never ban the balancer.
    private func begin(
        context: ChannelHandlerContext, address: IPAddress, port: UInt16, localAddress: IPAddress, localPort: UInt16,
        balancerItself: Bool = false
    ) {
        self.clientAddress = address
        let hostname = self.shared.session.hostname

        self.registryKey = self.shared.guardEngine.clientKey(address)
        switch self.shared.registry.admit(self.registryKey!, channel: context.channel) {
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
        let info = ClientInfo(
            address: address, port: port, localAddress: localAddress, localPort: localPort,
            authAllowed: !balancerItself && self.shared.configuration.authNetworks.contains(address), implicitTLS: self.implicitTLS)
        var machine = SMTPSessionStateMachine(configuration: self.shared.session, client: info)
        let actions = machine.start()
        self.machine = machine
        self.run(actions)
        self.flushAll()
        self.readIfWanted()
    }

    private func refuse(_ reply: SMTPReply, context: ChannelHandlerContext) {
        if self.implicitTLS {
            // No TLS handshake is spent on a client that is refused anyway.
            context.close(promise: nil)
            return
        }
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
                self.begin(context: context, address: source, port: sourcePort, localAddress: destination, localPort: destinationPort)
            case .local:
                guard let remote, let address = IPAddress(remote) else { return }
                self.begin(
                    context: context, address: address, port: UInt16(clamping: remote.port ?? 0),
                    localAddress: local.flatMap(IPAddress.init) ?? IPAddress(ipv4: 0x7F00_0001), localPort: UInt16(clamping: local?.port ?? 0),
                    balancerItself: true)
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
        self.send { $0.backendReply(reply, clientWaiting: waiting) }
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
    private func processInput() {
        guard !self.processing else { return }
        self.processing = true
        defer { self.processing = false }
        while self.machine?.wantsInput == true {
            let limit = self.machine!.lineLimit(peek: self.inbound)
            let detectTLS = self.machine!.expectsCommand
            guard let framed = self.framer.next(from: &self.inbound, limit: limit, detectTLS: detectTLS) else { break }
            let more = self.inbound.readableBytes > 0
            self.send { $0.clientLine(framed, more: more) }
        }
        if self.inbound.readableBytes == 0 {
            // Nothing waiting: let the read buffer go, so that an idle client holds no memory
            // for its next read (the next one is taken as it comes).
            self.inbound = Self.noInput
        } else if self.inbound.readerIndex > 16_384 {
            self.inbound.discardReadBytes()
        }
    }

    private static let noInput = ByteBuffer()

    /// Back-pressure: reads pass while the buffered input is small and the backend keeps up;
    /// otherwise they wait until `readIfWanted` lets them go.
    private var mayRead: Bool {
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

    private func readIfWanted() {
        guard self.heldRead, self.mayRead, let context = self.context else { return }
        self.heldRead = false
        context.read()
    }

    // MARK: - Carrying out actions

    private func send(_ event: (inout SMTPSessionStateMachine) -> [SessionAction]) {
        guard self.machine != nil else { return }
        let actions = event(&self.machine!)  // in place: no copy of the machine per event
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
            var buffer = context.channel.allocator.buffer(capacity: 64)
            reply.write(into: &buffer)
            context.write(self.wrapOutboundOut(buffer), promise: nil)
            self.clientNeedsFlush = true
        case .decide(var attempt):
            attempt.time = self.shared.guardEngine.clock.now()
            let decision = self.shared.guardEngine.decide(attempt)
            if self.shared.logger.logLevel <= .debug { self.logger.debug(
                "guard decided",
                metadata: [
                    "auth.outcome": .string(attempt.outcome.rawValue), "guard.decision": .string(decision.verdict.rawValue),
                    "guard.reasons": .string(decision.reasons.map(\.rawValue).joined(separator: ",")),
                    "guard.delay": .string(decision.delay.compactText),
                ]) }
            self.send { $0.verdictReceived(decision) }
        case .confirm(var attempt):
            attempt.time = self.shared.guardEngine.clock.now()
            let confirmation = self.shared.guardEngine.confirm(attempt)
            if confirmation.verdict != .allow {
                self.logger.info(
                    "an attempt that waited in the tarpit was stopped: a ban came meanwhile",
                    metadata: ["guard.reasons": .string(confirmation.reasons.map(\.rawValue).joined(separator: ","))])
            }
            self.send { $0.confirmationReceived(confirmation) }
        case .authCredentialsSent:
            if self.shared.penaltyMonitor != nil { self.credentialsSentAt = .now() }
        case .backendAuthAnswered(let code):
            if let monitor = self.shared.penaltyMonitor, let sent = self.credentialsSentAt {
                self.credentialsSentAt = nil
                let waited = Duration.nanoseconds((NIODeadline.now() - sent).nanoseconds)
                monitor.note(code: code, waited: waited, at: self.shared.guardEngine.clock.now())
            }
        case .checkSending(var request):
            request.time = self.shared.guardEngine.clock.now()
            let decision = self.shared.guardEngine.checkSending(request)
            self.send { $0.sendingVerdictReceived(decision) }
        case .recordAttempt(var attempt, let replyCode, let decision):
            attempt.time = self.shared.guardEngine.clock.now()
            self.shared.events.record(.attempt(AttemptRecord(attempt: attempt, session: self.sessionID, replyCode: replyCode, decision: decision)))
        case .startTimer(let timer, let duration):
            guard let context = self.context else { return }
            let index = SessionTimers.index(timer)
            let due = context.eventLoop.now + .nanoseconds(duration.nanosecondsClamped)
            self.timers.deadlines[index] = due
            if let scheduled = self.timers.tasks[index], scheduled.due <= due { return }
            self.arm(timer, at: due, on: context.eventLoop)
        case .cancelTimer(let timer):
            self.timers.deadlines[SessionTimers.index(timer)] = nil
        case .startTLS:
            self.startClientTLS()
        case .startBackendTLS:
            self.startBackendTLS()
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
            self.clientNeedsFlush = false
            // Writes complete in order: when an empty write after the last reply is done, the
            // client has been told everything. A client that never reads would hold that
            // write, and the connection, forever: the grace timer ends it regardless.
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer()), promise: written)
            let grace = context.eventLoop.assumeIsolated().scheduleTask(in: Self.closeGrace) {
                context.close(promise: nil)
            }
            written.futureResult.assumeIsolated().whenComplete { _ in
                grace.cancel()
                context.close(promise: nil)
            }
        case .dropClient:
            self.clientNeedsFlush = false
            self.context?.close(promise: nil)
        case .log(let level, let message):
            switch level {
            case .info: self.logger.info("\(message)")
            case .warning: self.logger.warning("\(message)")
            case .error:
                // Session-ending trouble is always the backend's (see backendTrouble in the machine).
                self.shared.backendErrors.increment()
                self.logger.error("\(message)", metadata: ["backend": .string(self.shared.configuration.backend.description)])
            case .critical: self.logger.critical("\(message)")
            }
        }
    }

    private func arm(_ timer: SessionTimer, at due: NIODeadline, on eventLoop: any EventLoop) {
        let index = SessionTimers.index(timer)
        self.timers.tasks[index]?.task.cancel()
        let task = eventLoop.assumeIsolated().scheduleTask(deadline: due) {
            self.timers.tasks[index] = nil
            guard let deadline = self.timers.deadlines[index] else { return }  // cancelled meanwhile
            if deadline > eventLoop.now {
                self.arm(timer, at: deadline, on: eventLoop)  // restarted meanwhile
                return
            }
            self.timers.deadlines[index] = nil
            // A backend reply held back because the client does not read its own replies is the
            // client's stall, not the backend's.
            let stalled = timer == .backendReply && !(self.context?.channel.isWritable ?? true)
            if timer == .dataRate && !self.backendWritable {
                // The guard held the client's data back for the backend: not the client's doing.
                self.send { $0.dataRateCheckExcused() }
            } else {
                self.send { $0.timerFired(stalled ? .clientIdle : timer) }
            }
            self.processInput()
            self.flushAll()
            self.readIfWanted()
        }
        self.timers.tasks[index] = (task, due)
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

    /// STARTTLS from the client: the 220 goes out in plain text, then every byte both ways
    /// passes the TLS handler. The machine has checked that no client bytes were waiting;
    /// anything plain the client sends from here on reaches the TLS layer and fails it.
    private func startClientTLS() {
        guard let context = self.context, let store = self.shared.tls else { return }
        if self.clientNeedsFlush {
            self.clientNeedsFlush = false
            context.flush()  // before the TLS handler, which would hold it until the handshake
        }
        self.inbound.clear()
        self.framer = SMTPLineFramer()
        do {
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: store.context), position: .first)
        } catch {
            self.send { $0.tlsFailed("cannot start TLS: \(error)") }
        }
    }

    /// STARTTLS to the backend, after its 220: nothing it sent after that reply may count.
    private func startBackendTLS() {
        guard let backend = self.backend, let tls = self.shared.backendTLS else {
            self.backendProtocolError("STARTTLS to the backend without backend TLS settings")
            return
        }
        do {
            let replies = try backend.pipeline.syncOperations.handler(type: BackendReplyHandler.self)
            guard !replies.hasBufferedInput else {
                self.backendProtocolError("the backend sent data after its 220 to STARTTLS (STARTTLS injection)")
                return
            }
            try backend.pipeline.syncOperations.addHandler(tls.makeHandler(), position: .first)
        } catch {
            self.backendProtocolError("cannot start TLS to the backend: \(error)")
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
                guard self.context != nil, self.machine?.isClosed == false else {
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
