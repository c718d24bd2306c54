// The backend's side of a session: the link opening (BackendPreambleStateMachine), each
// reply paired with what it answers (ReplyQueue), and how a session ends. Part of
// SMTPSessionStateMachine.

import GuardCore
import NIOCore

extension SMTPSessionStateMachine {
    // MARK: - Link events

    public mutating func backendConnected() -> [SessionAction] {
        guard !self.isClosed, let steps = self.link.connected() else { return [] }
        return [.cancelTimer(.backendConnect)] + self.carryOut(steps)
    }

    public mutating func backendConnectFailed(_ reason: String) -> [SessionAction] {
        guard self.link.state == .connecting, !self.isClosed else { return [] }
        return self.backendTrouble("cannot connect to the backend: \(reason)")
    }

    /// The guard's TLS handshake with the backend is done (after STARTTLS to it).
    public mutating func backendTLSEstablished() -> [SessionAction] {
        guard !self.isClosed, let steps = self.link.tlsEstablished() else { return [] }
        return [.cancelTimer(.backendConnect)] + self.carryOut(steps)
    }

    /// The backend closed its side or failed.
    public mutating func backendClosed() -> [SessionAction] {
        switch self.phase {
        case .closed, .backendGone: return []
        default: return self.backendTrouble("the backend closed the connection")
        }
    }

    /// A complete reply from the backend. `clientWaiting`: the client has sent bytes the
    /// session has not taken yet.
    public mutating func backendReplyReceived(_ reply: SMTPReply, clientWaiting: Bool) -> [SessionAction] {
        guard !self.isClosed else { return [] }
        self.clientWaiting = clientWaiting
        if self.link.isSettingUp { return self.carryOut(self.link.reply(reply)) }
        guard self.link.isUp, let answered = self.replies.answered() else {
            if reply.code == 421 { return self.backendTrouble("the backend ended the session (421)") }
            return self.closeBoth(
                with: self.texts.backendProtocolError,
                failure: "the backend sent a reply to no command (\(reply.code)): protocol error, session closed")
        }
        return self.handle(reply, for: answered) + self.afterReply()
    }

    /// The session's side of the link's steps.
    private mutating func carryOut(_ steps: [PreambleAction]) -> [SessionAction] {
        var actions: [SessionAction] = []
        for step in steps {
            switch step {
            case .send(let bytes):
                actions.append(.sendToBackend(bytes))
            case .awaitReply:
                actions.append(.startTimer(.backendReply, self.configuration.replyTimeout))
            case .startTLS:
                actions += [.cancelTimer(.backendReply), .startBackendTLS, .startTimer(.backendConnect, self.configuration.connectTimeout)]
            case .ready:
                actions += self.linkUp()
            case .failed(let reason):
                actions += self.backendTrouble(reason)
            case .helloRefused(let code):
                actions += self.closeBoth(
                    with: self.texts.sessionRefused(backendCode: code), log: (.info, "the backend refused the client's EHLO/HELO with \(code): session closed"))
            }
        }
        return actions
    }

    /// The link is up: what waited for it goes out, in order.
    private mutating func linkUp() -> [SessionAction] {
        var actions: [SessionAction] = [.cancelTimer(.backendReply)]
        if let offered = self.link.backendMechanisms, case .auth(let exchange) = self.phase, let refused = exchange.backendOffers(offered) {
            self.replies.dropOwed()
            self.link.dropDeferred()
            return actions + self.carryOut(refused)
        }
        for item in self.link.takeDeferred() {
            actions.append(.sendToBackend(item.bytes))
            if item.credentials { actions.append(.authCredentialsSent) }
        }
        if !self.replies.isEmpty {
            actions.append(.startTimer(.backendReply, self.configuration.replyTimeout))
        }
        return actions
    }

    // MARK: - Replies

    private mutating func handle(_ reply: SMTPReply, for pending: PendingReply) -> [SessionAction] {
        switch pending {
        case .ehlo:
            guard reply.isPositive else { return [.sendToClient(reply)] }
            self.facts.ehloSeen = true
            self.facts.inTransaction = false
            let (edited, mechanisms) = self.ehloEditor.edit(reply)
            self.facts.offeredMechanisms = mechanisms
            return [.sendToClient(edited)]
        case .helo:
            guard reply.isPositive else { return [.sendToClient(reply)] }
            self.facts.ehloSeen = true
            self.facts.inTransaction = false
            self.facts.offeredMechanisms = []
            return [.sendToClient(self.texts.helo(code: reply.code))]
        case .mail:
            if reply.isPositive { self.facts.inTransaction = true }
            return [.sendToClient(reply)]
        case .rset:
            if reply.isPositive { self.facts.inTransaction = false }
            return [.sendToClient(reply)]
        case .data:
            if reply.code == 354 {
                self.phase = .data(DataTransfer())
                var actions: [SessionAction] = [.sendToClient(self.texts.startData)]
                if self.configuration.dataMinRate > 0 { actions.append(.startTimer(.dataRate, ProxyConfiguration.dataRateInterval)) }
                return actions
            }
            if self.clientWaiting {
                // The client did not wait for 354 (RFC 2920 says it must): what it sent is
                // message data that would be read as commands.
                return [.sendToClient(reply)]
                    + self.closeBoth(
                        with: self.texts.dataBeforeAccepted,
                        log: (.warning, "client sent message data although DATA was refused (\(reply.code)): disconnected"))
            }
            return [.sendToClient(reply)]
        case .dataEnd:
            self.facts.inTransaction = false
            // A message delivered: what came before it was not junk.
            if reply.isPositive { self.facts.junkCommands = 0 }
            return [.sendToClient(reply)]
        case .quit:
            return self.closeBoth(with: self.texts.bye, log: nil)
        case .relay:
            return [.sendToClient(reply)]
        case .authChallenge, .authLoginPrompt, .authResult:
            return self.withExchange { $0.backendReply(reply, for: pending) }
        case .swallow:
            return []
        case .local(let reply):
            return [.sendToClient(reply)]
        }
    }

    /// After a backend reply: send the guard's own replies that were waiting their turn,
    /// settle the backend timer, and take up a held line.
    mutating func afterReply() -> [SessionAction] {
        guard !self.isClosed else { return [] }
        var actions: [SessionAction] = self.replies.takeDueReplies().map { .sendToClient($0) }
        if self.replies.isEmpty {
            actions.append(.cancelTimer(.backendReply))
            if self.wantsInput || self.replies.held != nil {
                actions.append(.startTimer(.clientIdle, self.configuration.commandTimeout))
            }
            if case .commands = self.phase, let held = self.replies.held {
                self.replies.held = nil
                actions += self.command(held)
            }
        } else {
            actions.append(.startTimer(.backendReply, self.replies.replyTimeout(self.configuration)))
        }
        return actions
    }

    // MARK: - Ending

    mutating func backendTrouble(_ reason: String) -> [SessionAction] {
        self.closeBoth(with: self.texts.backendUnavailable, failure: reason)
    }

    /// Ends the session because of the backend: logged as its failure (and counted).
    private mutating func closeBoth(with reply: SMTPReply, failure: String) -> [SessionAction] {
        self.close(with: reply, first: .backendFailed(failure))
    }

    mutating func closeBoth(with reply: SMTPReply, log: (SessionLogLevel, String)?) -> [SessionAction] {
        self.close(with: reply, first: log.map { .log($0.0, $0.1) })
    }

    private mutating func close(with reply: SMTPReply, first note: SessionAction?) -> [SessionAction] {
        switch self.phase {
        case .closed:
            return []
        case .clientTLS:
            // Mid handshake nothing can be said to the client.
            return self.closeQuietly(note: note ?? .log(.info, "session ended during the client's TLS handshake"))
        default:
            var actions: [SessionAction] = []
            if let note { actions.append(note) }
            actions += self.abandonFlight(replyCode: reply.code)
            self.phase = .closed
            self.replies.clear()
            actions += [.sendToClient(reply), .closeBackend, .closeClient]
            return actions + Self.cancelAllTimers
        }
    }

    /// Ends the session with nothing more said to the client (it is in a TLS handshake).
    mutating func closeQuietly(log: (SessionLogLevel, String)) -> [SessionAction] {
        self.closeQuietly(note: .log(log.0, log.1))
    }

    private mutating func closeQuietly(note: SessionAction) -> [SessionAction] {
        guard !self.isClosed else { return [] }
        self.phase = .closed
        self.replies.clear()
        return [note, .closeBackend, .dropClient] + Self.cancelAllTimers
    }
}
