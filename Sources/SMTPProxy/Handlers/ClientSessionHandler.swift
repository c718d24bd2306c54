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
    /// The engine's answers to the batch of actions being carried out, for after it.
    private var answers: [(inout SMTPSessionStateMachine) -> [SessionAction]] = []
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
        self.begin(context: context, self.candidate(remote: remote, address: address, local: context.channel.localAddress))
    }

    /// The client is known: admit or refuse it (ConnectionAdmission decides), then start
    /// the session.
    private func begin(context: ChannelHandlerContext, _ candidate: ConnectionAdmission.Candidate) {
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

    private func candidate(remote: SocketAddress, address: IPAddress, local: SocketAddress?, balancerItself: Bool = false) -> ConnectionAdmission.Candidate {
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
    private func processInput() {
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

    /// Hands the machine one event and carries out what it asks. The engine's answers to the
    /// batch (`verdictReceived`, `confirmationReceived`, `sendingVerdictReceived`) are events
    /// of their own, handed over once the whole batch is done, never in the middle of it.
    private func send(_ event: (inout SMTPSessionStateMachine) -> [SessionAction]) {
        guard self.machine != nil else { return }
        let actions = event(&self.machine!)  // in place: no copy of the machine per event
        self.run(actions)
    }

    private func run(_ actions: [SessionAction]) {
        for action in actions {
            self.run(action)
        }
        while !self.answers.isEmpty, self.machine != nil {
            let answer = self.answers.removeFirst()
            self.run(answer(&self.machine!))
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
            self.logDecision(attempt, decision)
            // Carried out when this batch is done (see run(_:)): the answer's actions come
            // after the ones already asked for.
            self.answers.append { $0.verdictReceived(decision) }
        case .report(var attempt):
            attempt.time = self.shared.guardEngine.clock.now()
            self.logDecision(attempt, self.shared.guardEngine.decide(attempt))
        case .confirm(var attempt):
            attempt.time = self.shared.guardEngine.clock.now()
            let confirmation = self.shared.guardEngine.confirm(attempt)
            if confirmation.verdict != .allow {
                self.logger.info(
                    "an attempt that waited in the tarpit was stopped: a ban came meanwhile",
                    metadata: ["guard.reasons": .string(confirmation.reasons.map(\.rawValue).joined(separator: ","))])
            }
            self.answers.append { $0.confirmationReceived(confirmation) }
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
            self.answers.append { $0.sendingVerdictReceived(decision) }
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
        case .backendFailed(let reason):
            self.shared.backendErrors.increment()
            self.logger.error("\(reason)", metadata: ["backend": .string(self.shared.configuration.backend.description)])
        case .log(let level, let message):
            self.log(level, message)
        }
    }

    private func log(_ level: SessionLogLevel, _ message: String, metadata: Logger.Metadata? = nil) {
        switch level {
        case .info: self.logger.info("\(message)", metadata: metadata)
        case .warning: self.logger.warning("\(message)", metadata: metadata)
        case .error: self.logger.error("\(message)", metadata: metadata)
        case .critical: self.logger.critical("\(message)", metadata: metadata)
        }
    }

    private func logDecision(_ attempt: AuthAttempt, _ decision: Decision) {
        guard self.shared.logger.logLevel <= .debug else { return }
        self.logger.debug(
            "guard decided",
            metadata: [
                "auth.outcome": .string(attempt.outcome.rawValue), "guard.decision": .string(decision.verdict.rawValue),
                "guard.reasons": .string(decision.reasons.map(\.rawValue).joined(separator: ",")),
                "guard.delay": .string(decision.delay.compactText),
            ])
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
            let clientWritable = self.context?.channel.isWritable ?? true
            let backendWritable = self.backendWritable
            self.send { $0.timerFired(timer, clientWritable: clientWritable, backendWritable: backendWritable) }
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
