// SMTPSessionStateMachine: every decision about one proxied SMTP session, as a value.
//
// It sits between a client and the backend mail server. It sees each client line and each
// backend reply, keeps one queue that pairs every backend reply with the client command it
// answers (ReplyQueue; a reply with no command ends the session), handles AUTH itself so
// that the engine decides before the backend sees a credential (AuthExchangeStateMachine),
// and returns actions: bytes to send, timers to start, the engine to ask, events to record,
// connections to close. It never touches a channel, never sleeps and never reads a clock:
// the handler does those things, and decides nothing.
//
// Like Postfix's postscreen, the guard greets the client and answers EHLO, HELO, NOOP, RSET,
// QUIT and STARTTLS itself: the backend connection (the link) is opened only when the client
// starts something the backend must see (MAIL, an AUTH the engine has let through, CRAM-MD5's
// challenge). An idle bot, a banned one or one waiting in the tarpit holds one descriptor of
// the guard's and no process of the mail server's. When the link opens, the guard says its
// own steps (BackendPreambleStateMachine: PROXY header, STARTTLS, XCLIENT), then the client's
// EHLO or HELO again, then what was waiting for the link.
//
// The commands live in SMTPSessionStateMachine+Commands.swift, the backend's replies and the
// session's end in SMTPSessionStateMachine+Backend.swift, the reply texts in SessionReplies.
//
// Trusts: nothing the client sends; the backend's replies only for their code and, where
// relayed, their text (the greeting and EHLO domain are always replaced).

import GuardCore
import NIOCore

public struct SMTPSessionStateMachine {
    // MARK: - State

    /// Where the session is; each phase carries what only it needs.
    enum Phase {
        case idle
        /// Waiting for the client's TLS handshake: after STARTTLS's 220, or at connect on an
        /// implicit TLS port (then the guard greets only once it is done).
        case clientTLS(implicit: Bool)
        case commands
        case auth(AuthExchangeStateMachine)
        case data(DataTransfer)
        /// The backend session was dropped (it accepted a default credential): the client's
        /// next line ends the session.
        case backendGone
        case closed
    }

    /// The message under way in DATA.
    struct DataTransfer {
        /// Bytes of the message so far, and since the last rate check.
        var messageBytes = 0
        var rateBytes = 0
    }

    /// What the session has learnt about the client so far.
    struct Facts {
        var ehloSeen = false
        /// The client connection is inside TLS, and with which protocol version.
        var tls = false
        var tlsVersion: String?
        /// The AUTH mechanisms the client was offered in the last EHLO reply.
        var offeredMechanisms: [AuthMechanism] = []
        var inTransaction = false
        /// The guard refused the last MAIL: its RCPTs are not counted (the backend refuses them).
        var mailRefused = false
        /// The username of the successful AUTH: what the sending limits count against.
        var authenticatedUser: String?
        /// Protocol errors, and commands that send no mail, against the configured maxima.
        var errors = 0
        var junkCommands = 0
    }

    public let configuration: SessionConfiguration
    public let client: ClientInfo
    var phase: Phase = .idle
    var facts = Facts()
    var replies = ReplyQueue()
    var link: BackendPreambleStateMachine
    /// The client has sent bytes beyond the line (or reply) being handled now: an input of
    /// the current event (some moments allow no pipelined input at all), not a fact.
    var clientWaiting = false

    /// Commands a client may have waiting for replies at once (see ReplyQueue).
    public static var maxPipelined: Int { ReplyQueue.maxPipelined }

    public init(configuration: SessionConfiguration, client: ClientInfo) {
        self.configuration = configuration
        self.client = client
        self.link = BackendPreambleStateMachine(configuration: configuration, client: client)
    }

    var texts: SessionReplies { self.configuration.replies }

    // MARK: - Queries

    /// True when the handler may hand over the next client line.
    public var wantsInput: Bool {
        guard !self.replies.holdsLine else { return false }
        switch self.phase {
        case .commands: return self.replies.takesMoreCommands
        case .auth(let exchange): return exchange.awaitsClient
        case .data, .backendGone: return true
        case .idle, .clientTLS, .closed: return false
        }
    }

    /// The longest line the next read may hold, given its first bytes.
    public func lineLimit(peek: ByteBuffer) -> Int {
        switch self.phase {
        case .data: return self.configuration.maxDataLine
        case .auth: return self.configuration.maxAuthLine
        default: return SMTPCommand.looksLikeAuth(peek) ? self.configuration.maxAuthLine : self.configuration.maxCommandLine
        }
    }

    /// The next client line is a command (so a TLS ClientHello there is recognised).
    public var expectsCommand: Bool {
        if case .commands = self.phase { return true }
        return false
    }

    public var isClosed: Bool {
        if case .closed = self.phase { return true }
        return false
    }

    public var isAuthenticated: Bool { self.facts.authenticatedUser != nil }
    public var isTLS: Bool { self.facts.tls }
    /// Waiting for the client's TLS handshake.
    public var isAwaitingTLS: Bool {
        if case .clientTLS = self.phase { return true }
        return false
    }

    // MARK: - Client events

    /// The client is connected and admitted (ConnectionAdmission): the guard greets it. On an
    /// implicit TLS port the session waits for the TLS handshake first.
    public mutating func clientAdmitted() -> [SessionAction] {
        let lifetime = SessionAction.startTimer(.session, self.configuration.sessionTimeout)
        if self.client.implicitTLS {
            self.phase = .clientTLS(implicit: true)
            return [lifetime, .startTimer(.tlsHandshake, self.configuration.tlsHandshakeTimeout)]
        }
        return [lifetime] + self.greet()
    }

    /// The guard's own greeting: the backend is not connected for it.
    private mutating func greet() -> [SessionAction] {
        self.phase = .commands
        return [.sendToClient(self.texts.greeting), .startTimer(.clientIdle, self.configuration.commandTimeout)]
    }

    /// The client's TLS handshake is done. From here on the session knows nothing of what
    /// was said before it (RFC 3207): the client must say EHLO again.
    public mutating func tlsEstablished(version: String) -> [SessionAction] {
        guard case .clientTLS(let implicit) = self.phase else { return [] }
        self.facts.tls = true
        self.facts.tlsVersion = version
        self.facts.ehloSeen = false
        self.facts.offeredMechanisms = []
        self.facts.inTransaction = false
        var actions: [SessionAction] = [.cancelTimer(.tlsHandshake)]
        if implicit {
            actions += self.greet()
        } else {
            self.phase = .commands
            actions.append(.startTimer(.clientIdle, self.configuration.commandTimeout))
        }
        return actions
    }

    /// The client's TLS handshake failed (plain text after STARTTLS, a bad ClientHello, no
    /// common version): nothing can be said to it any more.
    public mutating func tlsFailed(_ reason: String) -> [SessionAction] {
        guard case .clientTLS = self.phase else { return [] }
        return self.closeQuietly(log: (.info, "TLS handshake with the client failed: \(reason)"))
    }

    public mutating func clientClosed() -> [SessionAction] {
        guard !self.isClosed else { return [] }
        let actions = self.abandonFlight(replyCode: 0)
        self.phase = .closed
        return actions + [.closeBackend, .closeClient] + Self.cancelAllTimers
    }

    /// A framed line from the client. `more`: the client sent bytes beyond this line.
    public mutating func clientLineReceived(_ framed: FramedLine, more: Bool) -> [SessionAction] {
        guard self.wantsInput else { return [] }
        self.clientWaiting = more
        let actions: [SessionAction] = [.startTimer(.clientIdle, self.configuration.commandTimeout)]
        switch framed {
        case .tlsRecord:
            return actions
                + self.closeBoth(
                    with: self.texts.tlsWithoutSTARTTLS, log: (.info, "client began TLS without STARTTLS on a plain port: disconnected"))
        case .bareNewline:
            return actions
                + self.closeBoth(
                    with: self.texts.bareNewline, log: (.warning, "client sent a bare CR or LF: disconnected (SMTP smuggling defence)"))
        case .tooLong:
            switch self.phase {
            case .data:
                return actions
                    + self.closeBoth(
                        with: self.texts.dataLineTooLong,
                        log: (.warning, "client sent a message line over \(self.configuration.maxDataLine) bytes: message dropped, disconnected"))
            case .auth:
                return actions + self.withExchange { $0.lineTooLong() }
            default:
                return actions + self.localReply(self.texts.lineTooLong, error: true)
            }
        case .line(let line):
            switch self.phase {
            case .data: return actions + self.dataLine(line)
            case .auth: return actions + self.withExchange { $0.response(line.content) }
            case .backendGone: return actions + self.closeBoth(with: self.texts.serviceNotAvailable, log: nil)
            default: return actions + self.command(line)
            }
        }
    }

    // MARK: - Timers

    /// A timer ran out. `clientWritable`: the client is reading what it is sent;
    /// `backendWritable`: the backend is taking what it is sent. They decide whose fault a
    /// timeout is: a backend reply held back because the client does not read its replies is
    /// the client's stall, and a slow DATA while the guard held the client's bytes back for
    /// the backend is not the client's doing.
    public mutating func timerFired(_ timer: SessionTimer, clientWritable: Bool = true, backendWritable: Bool = true) -> [SessionAction] {
        switch timer {
        case .backendConnect:
            guard !self.isClosed, let reason = self.link.connectTimeoutReason else { return [] }
            return self.backendTrouble(reason)
        case .backendReply:
            if !clientWritable { return self.timerFired(.clientIdle) }
            guard self.link.isSettingUp || (self.link.isUp && !self.replies.isEmpty), !self.isClosed else { return [] }
            return self.backendTrouble("the backend did not answer within \(self.configuration.replyTimeout.compactText)")
        case .clientIdle:
            guard !self.isClosed else { return [] }
            return self.closeBoth(
                with: self.texts.idleTimeout, log: (.info, "client idle for \(self.configuration.commandTimeout.compactText): disconnected"))
        case .tarpit:
            return self.withExchange { $0.tarpitEnded() }
        case .tlsHandshake:
            guard case .clientTLS = self.phase else { return [] }
            return self.closeQuietly(
                log: (.info, "client did not complete the TLS handshake within \(self.configuration.tlsHandshakeTimeout.compactText): disconnected"))
        case .dataRate:
            guard case .data(var transfer) = self.phase else { return [] }
            let interval = ProxyConfiguration.dataRateInterval
            if backendWritable {
                let needed = self.configuration.dataMinRate * Int(interval.components.seconds)
                if transfer.rateBytes < needed {
                    return self.closeBoth(
                        with: self.texts.dataTooSlow,
                        log: (.info, "client sent \(transfer.rateBytes) bytes of message in \(interval.compactText) (minimum \(needed)): disconnected"))
                }
            }
            // Passed, or excused (the backend was not taking data): the count starts again.
            transfer.rateBytes = 0
            self.phase = .data(transfer)
            return [.startTimer(.dataRate, interval)]
        case .session:
            guard !self.isClosed else { return [] }
            return self.closeBoth(
                with: self.texts.sessionTooLong, log: (.info, "session lasted \(self.configuration.sessionTimeout.compactText): disconnected"))
        }
    }

    // MARK: - The engine's answers

    /// The engine's answer to the last `.decide`.
    public mutating func verdictReceived(_ decision: Decision) -> [SessionAction] {
        guard case .auth(let exchange) = self.phase else { return [] }
        let reporting = exchange.isReporting
        let actions = self.withExchange { $0.verdictReceived(decision) }
        return reporting ? actions + self.afterReply() : actions
    }

    /// The engine's answer to `.confirm`: go ahead as decided before the tarpit, or refuse.
    public mutating func confirmationReceived(_ confirmation: Decision) -> [SessionAction] {
        self.withExchange { $0.confirmationReceived(confirmation) }
    }

    // MARK: - AUTH

    /// Runs an event of the AUTH exchange in progress (none: nothing happens) and carries out
    /// what it asks.
    mutating func withExchange(_ event: (inout AuthExchangeStateMachine) -> [AuthAction]) -> [SessionAction] {
        guard case .auth(var exchange) = self.phase else { return [] }
        self.phase = .idle  // no second copy of the exchange while it changes
        let actions = event(&exchange)
        self.phase = .auth(exchange)
        return self.carryOut(actions)
    }

    /// The session's side of an AUTH exchange's actions.
    mutating func carryOut(_ auth: [AuthAction]) -> [SessionAction] {
        var actions: [SessionAction] = []
        for action in auth {
            switch action {
            case .finished:
                self.phase = .commands
            case .tell(let reply):
                actions.append(.sendToClient(reply))
            case .refuse(let reply):
                actions += self.localReply(reply, error: true)
            case .toBackend(let text, let kind, let credentials):
                actions += self.sendLine(text, expecting: kind, credentials: credentials)
            case .decide(let attempt):
                actions.append(.decide(attempt))
            case .report(let attempt):
                actions.append(.report(attempt))
            case .confirm(let attempt):
                actions.append(.confirm(attempt))
            case .tarpit(let delay):
                // The client waits for us now: its idle timer rests until the answer is out.
                actions += [.startTimer(.tarpit, delay), .cancelTimer(.clientIdle)]
            case .backendAnswered(let code):
                actions.append(.backendAuthAnswered(code: code))
            case .record(let attempt, let code, let decision):
                actions.append(.recordAttempt(attempt, replyCode: code, decision: decision))
            case .authenticated(let username):
                self.facts.authenticatedUser = username
            case .defaultCredentialAccepted:
                self.phase = .backendGone
                self.replies.dropOwed()
            case .closeBackend:
                actions.append(.closeBackend)
            case .banned:
                actions += self.closeBoth(
                    with: self.texts.serviceNotAvailable, log: (.info, "client \(self.client.address) is banned: disconnected"))
            case .resumeIdle:
                if !self.isClosed { actions.append(.startTimer(.clientIdle, self.configuration.commandTimeout)) }
            case .log(let level, let message):
                actions.append(.log(level, message))
            }
        }
        return actions
    }

    /// An AUTH under way whose outcome will never be known (the session ends).
    func abandonFlight(replyCode: Int) -> [SessionAction] {
        guard case .auth(let exchange) = self.phase else { return [] }
        return exchange.abandoned(replyCode: replyCode, linkUp: self.link.isUp).compactMap {
            switch $0 {
            case .report(let attempt): return .report(attempt)
            case .record(let attempt, let code, let decision): return .recordAttempt(attempt, replyCode: code, decision: decision)
            default: return nil
            }
        }
    }

    static let cancelAllTimers: [SessionAction] = SessionTimer.allCases.map { .cancelTimer($0) }
}
