// The client's commands: which the guard answers itself, which go to the backend (at once,
// or once the link is up), STARTTLS, the start of AUTH, the sending limits on MAIL and RCPT,
// and the message in DATA. Part of SMTPSessionStateMachine.

import GuardCore
import NIOCore

extension SMTPSessionStateMachine {
    mutating func command(_ line: SMTPLine) -> [SessionAction] {
        guard let command = SMTPCommand(line: line.content) else { return self.localReply(self.texts.badSyntax, error: true) }
        if self.facts.tls && !self.facts.ehloSeen {
            // After STARTTLS nothing said before counts: a new EHLO first.
            switch command.verb {
            case .ehlo, .helo, .quit, .noop, .rset, .startTLS: break
            default: return self.localReply(self.texts.helloFirst, error: true)
            }
        }
        switch command.verb {
        case .noop, .rset, .vrfy, .expn, .help, .etrn, .other:
            self.facts.junkCommands += 1
            if self.facts.junkCommands > self.configuration.maxJunkCommands {
                return self.closeBoth(
                    with: self.texts.tooManyJunkCommands,
                    log: (.info, "client sent \(self.facts.junkCommands) junk commands (NOOP, RSET, VRFY, unknown…): disconnected"))
            }
        default:
            break
        }
        if self.link.isDown, let actions = self.answerLocally(command, line) { return actions }
        switch command.verb {
        case .auth, .startTLS:
            if !self.replies.isEmpty {
                // Every reply before it must be in: AUTH and STARTTLS change what the next
                // lines mean.
                self.replies.held = line
                return []
            }
            return command.verb == .auth ? self.auth(command) : self.startTLS(command)
        case .ehlo:
            return self.forward(line, .ehlo)
        case .helo:
            return self.forward(line, .helo)
        case .mail:
            self.facts.mailRefused = false
            if self.isAuthenticated { return self.checkSending(line, .mail, kind: .message) }
            return self.forward(line, .mail)
        case .rcpt where self.isAuthenticated && !self.facts.mailRefused:
            return self.checkSending(line, .relay, kind: .recipients(1))
        case .rset:
            self.facts.mailRefused = false
            return self.forward(line, .rset)
        case .data:
            return self.forward(line, .data)
        case .quit:
            return self.forward(line, .quit)
        case .bdat:
            return self.localReply(self.texts.bdatUnsupported, error: true)
        case .xclient, .xforward:
            return self.localReply(self.texts.insufficientAuthorization, error: true)
        case .rcpt, .noop, .vrfy, .expn, .help, .etrn, .other:
            return self.forward(line, .relay)
        }
    }

    /// The commands the guard answers itself while the link is down (nil: not one of them).
    private mutating func answerLocally(_ command: SMTPCommand, _ line: SMTPLine) -> [SessionAction]? {
        switch command.verb {
        case .ehlo, .helo:
            let isEHLO = command.verb == .ehlo
            guard command.argument.contains(where: { $0 != " " }) else {
                return self.localReply(isEHLO ? self.texts.ehloSyntax : self.texts.heloSyntax, error: true)
            }
            self.link.remember(hello: line.wire, isEHLO: isEHLO)
            self.facts.ehloSeen = true
            self.facts.inTransaction = false
            self.facts.mailRefused = false
            if !isEHLO {
                self.facts.offeredMechanisms = []
                return self.localReply(self.texts.helo)
            }
            let (reply, mechanisms) = self.ehloEditor.local()
            self.facts.offeredMechanisms = mechanisms
            return self.localReply(reply)
        case .noop:
            return self.localReply(self.texts.ok)
        case .rset:
            self.facts.mailRefused = false
            self.facts.inTransaction = false
            return self.localReply(self.texts.ok)
        case .quit:
            return self.closeBoth(with: self.texts.bye, log: nil)
        case .rcpt:
            return self.localReply(self.texts.needMail, error: true)
        case .data:
            return self.localReply(self.texts.needRcpt, error: true)
        case .help:
            return self.localReply(self.texts.help)
        case .vrfy, .expn, .etrn:
            // Before MAIL the backend is not asked: no address probing at the mail server's cost.
            return self.localReply(self.texts.notBeforeMail)
        case .other:
            return self.localReply(self.texts.notRecognized, error: true)
        case .mail, .auth, .startTLS, .bdat, .xclient, .xforward:
            return nil
        }
    }

    /// What the client is offered in reply to EHLO, now.
    var ehloEditor: EHLOEditor {
        EHLOEditor(
            hostname: self.configuration.hostname,
            offerAuth: self.client.authAllowed && !self.isAuthenticated && (self.facts.tls || !self.configuration.requireTLS),
            mechanisms: self.configuration.mechanisms,
            offerSTARTTLS: self.configuration.tlsAvailable && !self.facts.tls,
            maxMessageSize: self.configuration.maxMessageSize)
    }

    // MARK: - Sending limits

    /// Holds a MAIL or RCPT of an authenticated user until the guard has counted it.
    private mutating func checkSending(_ line: SMTPLine, _ pending: PendingReply, kind: SendingRequest.Kind) -> [SessionAction] {
        self.replies.sendingCheck = (line, pending)
        let request = SendingRequest(
            time: Timestamp(nanoseconds: 0), username: self.facts.authenticatedUser ?? "", client: self.client.address, kind: kind,
            source: .proxy)
        return [.checkSending(request)]
    }

    /// The guard's word on the held MAIL or RCPT: pass it on, or answer 451 (a message, a
    /// locked account) or 452 (a recipient) in its place.
    public mutating func sendingVerdictReceived(_ decision: SendingDecision) -> [SessionAction] {
        guard let (line, pending) = self.replies.sendingCheck else { return [] }
        self.replies.sendingCheck = nil
        if decision.allowed { return self.forward(line, pending) }
        let reply = self.texts.sendingRefused(decision.text, recipient: pending != .mail && decision.excess != nil)
        if pending == .mail { self.facts.mailRefused = true }
        return self.localReply(reply)
    }

    // MARK: - To the backend, and the guard's own replies

    /// Passes a client line on as it came (CRLF included, no copy).
    private mutating func forward(_ line: SMTPLine, _ kind: PendingReply) -> [SessionAction] {
        self.sendToBackend(line.wire, expecting: kind)
    }

    /// `credentials`: this is the last line of an AUTH's credentials (the handler hears when
    /// it goes out, which is later if the link is not up yet).
    mutating func sendToBackend(_ bytes: ByteBuffer, expecting kind: PendingReply, credentials: Bool = false) -> [SessionAction] {
        let wasEmpty = self.replies.expect(kind)
        guard self.link.isUp else {
            // The reply's place in the order is kept; the bytes wait for the link.
            var actions: [SessionAction] = [.cancelTimer(.clientIdle)]
            if self.link.hold(bytes, credentials: credentials) {
                actions += [.connectBackend, .startTimer(.backendConnect, self.configuration.connectTimeout)]
            }
            return actions
        }
        // While the backend owes a reply, its timer runs, not the client's: a slow end of
        // data must not be taken for an idle client.
        var actions: [SessionAction] = [.sendToBackend(bytes), .cancelTimer(.clientIdle)]
        if credentials { actions.append(.authCredentialsSent) }
        if wasEmpty {
            actions.append(.startTimer(.backendReply, kind == .dataEnd ? self.configuration.dataTimeout : self.configuration.replyTimeout))
        }
        return actions
    }

    mutating func sendLine(_ text: String, expecting kind: PendingReply, credentials: Bool = false) -> [SessionAction] {
        var buffer = ByteBuffer(string: text)
        buffer.writeStaticString("\r\n")
        return self.sendToBackend(buffer, expecting: kind, credentials: credentials)
    }

    /// A reply of the guard's own, in its place in the reply order. `error`: a protocol error
    /// of the client's, counted against `smtp.max_errors`.
    mutating func localReply(_ reply: SMTPReply, error: Bool = false) -> [SessionAction] {
        if error {
            self.facts.errors += 1
            if self.facts.errors > self.configuration.maxErrors {
                return self.closeBoth(with: self.texts.tooManyErrors, log: (.info, "client made \(self.facts.errors) protocol errors: disconnected"))
            }
        }
        guard let now = self.replies.local(reply) else { return [] }
        return [.sendToClient(now)]
    }

    // MARK: - STARTTLS

    private mutating func startTLS(_ command: SMTPCommand) -> [SessionAction] {
        if !self.configuration.tlsAvailable { return self.localReply(self.texts.notImplemented, error: true) }
        if self.facts.tls { return self.localReply(self.texts.tlsAlreadyActive, error: true) }
        if command.argumentBytes.readableBytes > 0 { return self.localReply(self.texts.startTLSSyntax, error: true) }
        if self.isAuthenticated { return self.localReply(self.texts.alreadyAuthenticated, error: true) }
        if self.facts.inTransaction { return self.localReply(self.texts.inTransaction, error: true) }
        if self.clientWaiting {
            // CVE-2011-0411 and its kin: whatever follows STARTTLS in the same flight would be
            // taken as sent inside TLS. It is neither answered nor kept.
            return self.closeBoth(
                with: self.texts.pipelinedAfterSTARTTLS,
                log: (.warning, "client sent data after STARTTLS before the TLS handshake (STARTTLS injection): disconnected"))
        }
        self.phase = .clientTLS(implicit: false)
        return [
            .sendToClient(self.texts.readyToStartTLS), .startTLS, .cancelTimer(.clientIdle),
            .startTimer(.tlsHandshake, self.configuration.tlsHandshakeTimeout),
        ]
    }

    // MARK: - AUTH

    /// AUTH: the session's own conditions, then the exchange (AuthExchangeStateMachine).
    private mutating func auth(_ command: SMTPCommand) -> [SessionAction] {
        if !self.facts.ehloSeen { return self.localReply(self.texts.helloFirst, error: true) }
        if self.configuration.requireTLS && !self.facts.tls && self.client.authAllowed {
            return self.localReply(self.texts.encryptionRequired, error: true)
        }
        if self.facts.offeredMechanisms.isEmpty { return self.localReply(self.texts.authNotEnabled, error: true) }
        if self.isAuthenticated { return self.localReply(self.texts.alreadyAuthenticated, error: true) }
        if self.facts.inTransaction { return self.localReply(self.texts.inTransaction, error: true) }
        var exchange = AuthExchangeStateMachine(
            configuration: self.configuration,
            context: AuthExchangeStateMachine.Context(client: self.client, tls: self.facts.tls, tlsVersion: self.facts.tlsVersion))
        let actions = exchange.begin(command.argument, offered: self.facts.offeredMechanisms)
        self.phase = .auth(exchange)
        return self.carryOut(actions)
    }

    // MARK: - DATA

    mutating func dataLine(_ line: SMTPLine) -> [SessionAction] {
        guard case .data(var transfer) = self.phase else { return [] }
        let length = line.wire.readableBytes
        if length == 3 && line.wire.getInteger(at: line.wire.readerIndex, as: UInt8.self) == UInt8(ascii: ".") {
            self.phase = .commands
            return [.cancelTimer(.dataRate)] + self.sendToBackend(line.wire, expecting: .dataEnd)
        }
        transfer.messageBytes += length
        transfer.rateBytes += length
        self.phase = .data(transfer)
        if transfer.messageBytes > self.configuration.maxMessageSize {
            return self.closeBoth(
                with: self.texts.messageTooLarge,
                log: (.info, "client sent a message over \(self.configuration.maxMessageSize) bytes: message dropped, disconnected"))
        }
        if line.wire.containsNUL {
            // NUL has no place in a message (RFC 5322), and a backend that drops it could
            // read ".<NUL>" as the end of data.
            return self.closeBoth(
                with: self.texts.nulInData,
                log: (.warning, "client sent a NUL byte in message data: message dropped, disconnected (SMTP smuggling defence)"))
        }
        return [.sendToBackend(line.wire)]
    }
}
