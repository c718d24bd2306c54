// ClientSessionHandler's second half: carrying out the session machine's actions (writes,
// timers, the engine's calls, event records, TLS, the backend connection, closes). Nothing
// is decided here; see SMTPSessionStateMachine for what each action means.

import GuardCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import SMTPWire

extension ClientSessionHandler {
    // MARK: - Carrying out actions

    /// Hands the machine one event and carries out what it asks. The engine's answers to the
    /// batch (`verdictReceived`, `confirmationReceived`, `sendingVerdictReceived`) are events
    /// of their own, handed over once the whole batch is done, never in the middle of it.
    func send(_ event: (inout SMTPSessionStateMachine) -> [SessionAction]) {
        guard self.machine != nil else { return }
        let actions = event(&self.machine!)  // in place: no copy of the machine per event
        self.run(actions)
    }

    func run(_ actions: [SessionAction]) {
        for action in actions {
            self.run(action)
        }
        while !self.answers.isEmpty, self.machine != nil {
            let answer = self.answers.removeFirst()
            self.run(answer(&self.machine!))
        }
    }

    func run(_ action: SessionAction) {
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

    func log(_ level: SessionLogLevel, _ message: String, metadata: Logger.Metadata? = nil) {
        switch level {
        case .info: self.logger.info("\(message)", metadata: metadata)
        case .warning: self.logger.warning("\(message)", metadata: metadata)
        case .error: self.logger.error("\(message)", metadata: metadata)
        case .critical: self.logger.critical("\(message)", metadata: metadata)
        }
    }

    func logDecision(_ attempt: AuthAttempt, _ decision: Decision) {
        guard self.shared.logger.logLevel <= .debug else { return }
        self.logger.debug(
            "guard decided",
            metadata: [
                "auth.outcome": .string(attempt.outcome.rawValue), "guard.decision": .string(decision.verdict.rawValue),
                "guard.reasons": .string(decision.reasons.map(\.rawValue).joined(separator: ",")),
                "guard.delay": .string(decision.delay.compactText),
            ])
    }

    func arm(_ timer: SessionTimer, at due: NIODeadline, on eventLoop: any EventLoop) {
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

    func flushAll() {
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
    func startClientTLS() {
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
    func startBackendTLS() {
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

    func connectBackend() {
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
