// SMTPSessionStateMachine: every decision about one proxied SMTP session, as a value.
//
// It sits between a client and the backend mail server. It sees each client line and each
// backend reply, keeps one queue that pairs every backend reply with the client command it
// answers (a reply with no command ends the session), handles AUTH itself so that the
// engine decides before the backend sees a credential, and returns actions: bytes to send,
// timers to start, the engine to ask, events to record, connections to close. It never
// touches a channel, never sleeps and never reads a clock: the handler does those things.
//
// Like Postfix's postscreen, the guard greets the client and answers EHLO, HELO, NOOP, RSET,
// QUIT and STARTTLS itself: the backend connection (the link) is opened only when the client
// starts something the backend must see (MAIL, an AUTH the engine has let through, CRAM-MD5's
// challenge). An idle bot, a banned one or one waiting in the tarpit holds one descriptor of
// the guard's and no process of the mail server's. When the link opens, the guard says its
// own steps (PROXY header, STARTTLS, XCLIENT), then the client's EHLO or HELO again, then
// what was waiting for the link.
//
// Trusts: nothing the client sends; the backend's replies only for their code and, where
// relayed, their text (the greeting and EHLO domain are always replaced).

import GuardCore
import NIOCore

public enum SessionTimer: Hashable, Sendable, CaseIterable {
    case backendConnect
    case backendReply
    case clientIdle
    case tarpit
    /// The client's TLS handshake (after STARTTLS, or at connect on an implicit TLS port).
    case tlsHandshake
    /// The periodic check of the client's rate during DATA.
    case dataRate
    /// The whole session's lifetime.
    case session
}

public enum SessionLogLevel: Sendable, Equatable {
    case info, warning, error, critical
}

public enum SessionAction: Equatable, Sendable {
    case connectBackend
    case sendToBackend(ByteBuffer)
    case sendToClient(SMTPReply)
    /// Ask the engine; the handler stamps the time and answers with `verdictReceived`.
    indirect case decide(AuthAttempt)
    /// An attempt allowed before its tarpit is about to go to the backend: ask the engine
    /// whether a ban came meanwhile; the handler answers with `confirmationReceived`.
    indirect case confirm(AuthAttempt)
    /// The last credential line of an AUTH went to the backend (the handler notes the time).
    case authCredentialsSent
    /// The backend answered those credentials with this code (the handler measures the wait).
    case backendAuthAnswered(code: Int)
    /// One AUTH attempt is settled: write it to the event log.
    indirect case recordAttempt(AuthAttempt, replyCode: Int, decision: Decision)
    /// Ask the guard whether the authenticated user may send this (answer with
    /// `sendingVerdictReceived`); the time is filled in by the handler.
    case checkSending(SendingRequest)
    case startTimer(SessionTimer, Duration)
    case cancelTimer(SessionTimer)
    /// Put TLS on the client connection now (server side). Everything written before this
    /// action goes out in plain text; the handler must hold no client bytes (the machine has
    /// made sure none were waiting).
    case startTLS
    /// Put TLS on the backend connection now (client side), after its 220 to STARTTLS.
    case startBackendTLS
    case closeBackend
    /// Close the client once what was sent to it is flushed.
    case closeClient
    /// Close the client now: nothing more can be said to it (it is mid TLS handshake).
    case dropClient
    case log(SessionLogLevel, String)
}

public struct SMTPSessionStateMachine {
    // MARK: - State

    /// What the guard is waiting for from the client during AUTH.
    enum AuthStep: Equatable {
        case plain
        case loginUsername
        case loginPassword(username: String, usernameLine: String)
        case cramResponse(challenge: [UInt8])
    }

    /// One AUTH attempt on its way. Holds the client's base64 lines until they are
    /// forwarded or dropped; they are secrets and go nowhere else.
    struct AuthFlight: Equatable {
        var mechanism: AuthMechanism
        var attempt: AuthAttempt
        /// Lines to send the backend, in order (the first is a command or a response).
        var backendLines: [String]
        var delay: Duration = .zero
        /// LOGIN: the username line, in case the backend ignores the initial response and asks.
        var loginUsernameLine: String?
    }

    enum Phase: Equatable {
        case idle
        /// Waiting for the client's TLS handshake: after STARTTLS's 220, or at connect on an
        /// implicit TLS port (then the guard greets only once it is done).
        case clientTLS(implicit: Bool)
        case commands
        case authClient(AuthStep)
        case authChallenge  // CRAM-MD5: waiting for the backend's challenge
        case authDeciding(AuthFlight)
        case authTarpit(AuthFlight, Decision)
        /// After the tarpit, waiting for the engine to confirm the attempt may still go ahead.
        case authConfirming(AuthFlight, Decision)
        case authBackend(AuthFlight)
        case authReporting(AuthFlight, code: Int)
        case data
        case backendGone
        case closed
    }

    /// The guard's connection to the backend, opened only when the client needs it.
    enum Link: Equatable {
        case down
        case connecting
        /// Waiting for the backend's answer to a step of the guard's own.
        case setup(LinkStep)
        /// Waiting for the guard's own TLS handshake with the backend.
        case tls
        case up
    }

    /// The guard's own steps when the link opens, in order (each waits for its answer).
    enum LinkStep: Equatable {
        case greeting
        /// The guard's EHLO before its STARTTLS to the backend.
        case tlsEHLO
        case starttls
        case identityEHLO
        case identityXCLIENT
        /// The client's EHLO or HELO, said again to the backend.
        case hello
    }

    /// Bytes for the backend that wait until the link is up, in order. `credentials`: the
    /// last line of an AUTH's credentials.
    struct Deferred: Equatable {
        var bytes: ByteBuffer
        var credentials: Bool
    }

    /// What a backend reply answers.
    enum Pending: Equatable {
        case ehlo
        case helo
        case mail
        case rset
        case data
        case dataEnd
        case quit
        case relay
        case authChallenge
        case authLoginPrompt
        case authResult
        case swallow
        /// A reply of the guard's own, sent when every reply before it has been.
        case local(SMTPReply)
    }

    public let configuration: SessionConfiguration
    public let client: ClientInfo
    private var phase: Phase = .idle
    private var link: Link = .down
    /// What the client sent while the link was not up yet, for the backend once it is.
    private var deferred: [Deferred] = []
    /// The client's last EHLO or HELO line as it came, said again to the backend at link-up.
    private var hello: ByteBuffer?
    private var helloIsEHLO = false
    /// The mechanisms the backend offers the guard (from its answer to the client's EHLO
    /// said again), once known.
    private var backendMechanisms: Set<AuthMechanism>?
    private var pending = CircularBuffer<Pending>(initialCapacity: 8)
    /// Commands a client may have waiting for replies at once; past that the guard reads no
    /// more until replies come back (pipelining cannot make a session's queue grow without end).
    public static let maxPipelined = 100
    /// A line that must wait until every outstanding reply has come (AUTH behind others).
    private var heldLine: SMTPLine?
    private var ehloSeen = false
    private var authenticated = false
    /// The username of the successful AUTH: what the sending limits count against.
    private var authenticatedUsername = ""
    /// A MAIL or RCPT waiting for the guard's word on the sending limits.
    private var sendingCheck: (line: SMTPLine, kind: Pending)?
    /// The guard refused the last MAIL: its RCPTs are not counted (the backend refuses them).
    private var mailRefused = false
    private var inTransaction = false
    private var offeredMechanisms: [AuthMechanism] = []
    private var errors = 0
    private var junkCommands = 0
    private var closing = false
    /// The client connection is inside TLS, and with which protocol version.
    private var tls = false
    private var tlsVersion: String?
    /// Bytes of the current message, and of it since the last rate check.
    private var messageBytes = 0
    private var rateBytes = 0
    /// The client has sent bytes beyond the line (or reply) being handled now. Set at each
    /// event by the caller: some moments allow no pipelined input at all.
    private var clientWaiting = false

    public init(configuration: SessionConfiguration, client: ClientInfo) {
        self.configuration = configuration
        self.client = client
    }

    // MARK: - Queries

    /// True when the handler may hand over the next client line.
    public var wantsInput: Bool {
        guard !self.closing, self.heldLine == nil, self.sendingCheck == nil else { return false }
        switch self.phase {
        case .commands:
            // After DATA or QUIT nothing more is read until the backend has answered (they are
            // always last in the queue: nothing is read behind them).
            if let last = self.pending.last, last == .data || last == .quit { return false }
            return self.pending.count < Self.maxPipelined
        case .authClient, .data, .backendGone: return true
        default: return false
        }
    }

    /// The longest line the next read may hold, given its first bytes.
    public func lineLimit(peek: ByteBuffer) -> Int {
        switch self.phase {
        case .data: return self.configuration.maxDataLine
        case .authClient: return self.configuration.maxAuthLine
        default: return SMTPCommand.looksLikeAuth(peek) ? self.configuration.maxAuthLine : self.configuration.maxCommandLine
        }
    }

    /// The next client line is a command (so a TLS ClientHello there is recognised).
    public var expectsCommand: Bool { self.phase == .commands }

    public var isClosed: Bool { self.phase == .closed }
    public var isAuthenticated: Bool { self.authenticated }
    public var isTLS: Bool { self.tls }
    /// Waiting for the client's TLS handshake.
    public var isAwaitingTLS: Bool {
        if case .clientTLS = self.phase { return true }
        return false
    }

    // MARK: - Events

    /// The client is connected (and admitted): the guard greets it. On an implicit TLS port
    /// the session waits for the TLS handshake first.
    public mutating func start() -> [SessionAction] {
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
        return [
            .sendToClient(SMTPReply(code: 220, self.configuration.banner)),
            .startTimer(.clientIdle, self.configuration.commandTimeout),
        ]
    }

    /// The client's TLS handshake is done. From here on the session knows nothing of what
    /// was said before it (RFC 3207): the client must say EHLO again.
    public mutating func tlsEstablished(version: String) -> [SessionAction] {
        guard case .clientTLS(let implicit) = self.phase else { return [] }
        self.tls = true
        self.tlsVersion = version
        self.ehloSeen = false
        self.offeredMechanisms = []
        self.inTransaction = false
        var actions: [SessionAction] = [.cancelTimer(.tlsHandshake)]
        if implicit {
            actions += self.greet()
        } else {
            self.phase = .commands
            actions.append(.startTimer(.clientIdle, self.configuration.commandTimeout))
        }
        return actions
    }

    /// The data-rate check came while the guard was not reading from the client because the
    /// backend was not taking data: the client is not to blame; the count starts again.
    public mutating func dataRateCheckExcused() -> [SessionAction] {
        guard self.phase == .data else { return [] }
        self.rateBytes = 0
        return [.startTimer(.dataRate, ProxyConfiguration.dataRateInterval)]
    }

    /// The client's TLS handshake failed (plain text after STARTTLS, a bad ClientHello, no
    /// common version): nothing can be said to it any more.
    public mutating func tlsFailed(_ reason: String) -> [SessionAction] {
        guard case .clientTLS = self.phase else { return [] }
        return self.closeQuietly(log: (.info, "TLS handshake with the client failed: \(reason)"))
    }

    /// The guard's TLS handshake with the backend is done (after STARTTLS to it).
    public mutating func backendTLSEstablished() -> [SessionAction] {
        guard self.link == .tls, self.phase != .closed else { return [] }
        return [.cancelTimer(.backendConnect)] + self.identifyOrHello()
    }

    public mutating func backendConnected() -> [SessionAction] {
        guard self.link == .connecting, self.phase != .closed else { return [] }
        var actions: [SessionAction] = [.cancelTimer(.backendConnect)]
        let client = self.client
        switch self.configuration.identity {
        case .proxyV1:
            let header = ClientIdentity.proxyV1(
                source: client.address, sourcePort: client.port, destination: client.localAddress, destinationPort: client.localPort)
            actions.append(.sendToBackend(ByteBuffer(string: header)))
        case .proxyV2:
            actions.append(
                .sendToBackend(
                    ClientIdentity.proxyV2(
                        source: client.address, sourcePort: client.port, destination: client.localAddress, destinationPort: client.localPort)))
        case .none, .xclient:
            break
        }
        self.link = .setup(.greeting)
        actions.append(.startTimer(.backendReply, self.configuration.replyTimeout))
        return actions
    }

    public mutating func backendConnectFailed(_ reason: String) -> [SessionAction] {
        guard self.link == .connecting, self.phase != .closed else { return [] }
        return self.backendTrouble("cannot connect to the backend: \(reason)")
    }

    /// The backend closed its side or failed.
    public mutating func backendClosed() -> [SessionAction] {
        switch self.phase {
        case .closed: return []
        case .backendGone: return []
        default:
            if self.closing { return [] }
            return self.backendTrouble("the backend closed the connection")
        }
    }

    public mutating func clientClosed() -> [SessionAction] {
        guard self.phase != .closed else { return [] }
        let actions = self.abandonFlight(replyCode: 0)
        self.phase = .closed
        self.closing = true
        return actions + [.closeBackend, .closeClient] + self.cancelAllTimers()
    }

    /// An AUTH under way whose outcome will never be known: the engine hears it was
    /// abandoned (it is no longer in flight) and the event log records it.
    private func abandonFlight(replyCode: Int) -> [SessionAction] {
        switch self.phase {
        case .authTarpit(var flight, let decision), .authConfirming(var flight, let decision):
            if decision.verdict == .allow {
                flight.attempt.outcome = .abandoned
                return [.decide(flight.attempt), .recordAttempt(flight.attempt, replyCode: replyCode, decision: decision)]
            }
            flight.attempt.outcome = .failure  // refused by the guard, counted already
            return [.recordAttempt(flight.attempt, replyCode: replyCode, decision: decision)]
        case .authBackend(var flight):
            // Once the credentials are out, the backend may have checked them: unverified.
            // (While the link was still opening they were not out.)
            flight.attempt.outcome = flight.backendLines.isEmpty && self.link == .up ? .unverified : .abandoned
            return [.decide(flight.attempt), .recordAttempt(flight.attempt, replyCode: replyCode, decision: Decision(verdict: .allow, delay: flight.delay))]
        default:
            return []
        }
    }

    public mutating func timerFired(_ timer: SessionTimer) -> [SessionAction] {
        switch timer {
        case .backendConnect:
            guard self.phase != .closed else { return [] }
            if self.link == .tls {
                return self.backendTrouble("the TLS handshake with the backend did not finish within \(self.configuration.connectTimeout.compactText)")
            }
            guard self.link == .connecting else { return [] }
            return self.backendTrouble("the backend did not accept a connection within \(self.configuration.connectTimeout.compactText)")
        case .backendReply:
            let settingUp: Bool
            if case .setup = self.link { settingUp = true } else { settingUp = false }
            guard settingUp || (self.link == .up && !self.pending.isEmpty), self.phase != .closed else { return [] }
            return self.backendTrouble("the backend did not answer within \(self.configuration.replyTimeout.compactText)")
        case .clientIdle:
            guard self.phase != .closed else { return [] }
            return self.closeBoth(
                with: SMTPReply(code: 421, "4.4.2 \(self.configuration.hostname) Error: timeout exceeded"),
                log: (.info, "client idle for \(self.configuration.commandTimeout.compactText): disconnected"))
        case .tarpit:
            guard case .authTarpit(let flight, let decision) = self.phase else { return [] }
            if decision.verdict == .allow {
                // A ban decided while this attempt waited (another connection of the client
                // spent its budget) must stop it before the backend sees it.
                self.phase = .authConfirming(flight, decision)
                return [.confirm(flight.attempt)]
            }
            return self.act(on: decision, for: flight)
        case .tlsHandshake:
            guard case .clientTLS = self.phase else { return [] }
            return self.closeQuietly(
                log: (.info, "client did not complete the TLS handshake within \(self.configuration.tlsHandshakeTimeout.compactText): disconnected"))
        case .dataRate:
            guard self.phase == .data else { return [] }
            let interval = ProxyConfiguration.dataRateInterval
            let needed = self.configuration.dataMinRate * Int(interval.components.seconds)
            if self.rateBytes < needed {
                return self.closeBoth(
                    with: SMTPReply(code: 421, "4.4.2 \(self.configuration.hostname) Error: message data too slow, closing"),
                    log: (.info, "client sent \(self.rateBytes) bytes of message in \(interval.compactText) (minimum \(needed)): disconnected"))
            }
            self.rateBytes = 0
            return [.startTimer(.dataRate, interval)]
        case .session:
            guard self.phase != .closed else { return [] }
            return self.closeBoth(
                with: SMTPReply(code: 421, "4.4.2 \(self.configuration.hostname) Error: session too long, closing"),
                log: (.info, "session lasted \(self.configuration.sessionTimeout.compactText): disconnected"))
        }
    }

    /// A framed line from the client. `more`: the client sent bytes beyond this line.
    public mutating func clientLine(_ framed: FramedLine, more: Bool) -> [SessionAction] {
        guard self.wantsInput else { return [] }
        self.clientWaiting = more
        var actions: [SessionAction] = [.startTimer(.clientIdle, self.configuration.commandTimeout)]
        switch framed {
        case .tlsRecord:
            return actions
                + self.closeBoth(
                    with: SMTPReply(code: 554, "5.5.1 \(self.configuration.hostname) Error: TLS handshake on a plain SMTP port; send STARTTLS first"),
                    log: (.info, "client began TLS without STARTTLS on a plain port: disconnected"))
        case .bareNewline:
            return actions
                + self.closeBoth(
                    with: SMTPReply(code: 521, "5.5.2 \(self.configuration.hostname) Error: bare <CR> or <LF> received"),
                    log: (.warning, "client sent a bare CR or LF: disconnected (SMTP smuggling defence)"))
        case .tooLong:
            switch self.phase {
            case .data:
                return actions
                    + self.closeBoth(
                        with: SMTPReply(code: 554, "5.6.0 \(self.configuration.hostname) Error: message line longer than \(self.configuration.maxDataLine) bytes"),
                        log: (.warning, "client sent a message line over \(self.configuration.maxDataLine) bytes: message dropped, disconnected"))
            case .authClient(let step):
                actions += self.abandonAuth(step: step)
                actions += self.localReply(SMTPReply(code: 500, "5.5.6 Error: authentication line too long"), error: true)
                return actions
            default:
                return actions + self.localReply(SMTPReply(code: 500, "5.5.6 Error: line too long"), error: true)
            }
        case .line(let line):
            switch self.phase {
            case .data: return actions + self.dataLine(line)
            case .authClient(let step): return actions + self.authResponse(line.content, step: step)
            case .backendGone:
                return actions
                    + self.closeBoth(
                        with: SMTPReply(code: 421, "4.7.0 \(self.configuration.hostname) Service not available, closing transmission channel"),
                        log: nil)
            default: return actions + self.command(line)
            }
        }
    }

    /// A complete reply from the backend. `clientWaiting`: the client has sent bytes the
    /// session has not taken yet.
    public mutating func backendReply(_ reply: SMTPReply, clientWaiting: Bool) -> [SessionAction] {
        guard self.phase != .closed, !self.closing else { return [] }
        self.clientWaiting = clientWaiting
        if case .setup(let step) = self.link { return self.linkReply(reply, to: step) }
        guard self.link == .up, !self.pending.isEmpty else {
            if reply.code == 421 {
                return self.backendTrouble("the backend ended the session (421)")
            }
            return self.closeBoth(
                with: SMTPReply(code: 421, "4.3.0 \(self.configuration.hostname) Service not available, closing transmission channel"),
                log: (.error, "the backend sent a reply to no command (\(reply.code)): protocol error, session closed"))
        }
        let head = self.pending.removeFirst()
        var actions = self.handle(reply, for: head)
        actions += self.afterReply()
        return actions
    }

    /// The engine's answer to the last `.decide`.
    public mutating func verdictReceived(_ decision: Decision) -> [SessionAction] {
        switch self.phase {
        case .authDeciding(var flight):
            flight.delay = decision.delay
            if decision.delay > .zero {
                self.phase = .authTarpit(flight, decision)
                // The client waits for us now: its idle timer rests until the answer is out.
                return [.startTimer(.tarpit, decision.delay), .cancelTimer(.clientIdle)]
            }
            return self.act(on: decision, for: flight)
        case .authReporting(let flight, _):
            return self.settle(flight, decision: decision) + self.afterReply()
        default:
            return []
        }
    }

    /// The engine's answer to `.confirm`: go ahead as decided before the tarpit, or refuse.
    public mutating func confirmationReceived(_ confirmation: Decision) -> [SessionAction] {
        guard case .authConfirming(let flight, let decision) = self.phase else { return [] }
        if confirmation.verdict == .allow { return self.act(on: decision, for: flight) }
        var refusal = confirmation
        refusal.delay = flight.delay
        return self.act(on: refusal, for: flight)
    }

    // MARK: - Commands

    private mutating func command(_ line: SMTPLine) -> [SessionAction] {
        guard let command = SMTPCommand(line: line.content) else {
            return self.localReply(SMTPReply(code: 500, "5.5.2 Error: bad syntax"), error: true)
        }
        if self.tls && !self.ehloSeen {
            // After STARTTLS nothing said before counts: a new EHLO first.
            switch command.verb {
            case .ehlo, .helo, .quit, .noop, .rset, .startTLS: break
            default: return self.localReply(SMTPReply(code: 503, "5.5.1 Error: send HELO/EHLO first"), error: true)
            }
        }
        switch command.verb {
        case .noop, .rset, .vrfy, .expn, .help, .etrn, .other:
            self.junkCommands += 1
            if self.junkCommands > self.configuration.maxJunkCommands {
                return self.closeBoth(
                    with: SMTPReply(code: 421, "4.7.0 \(self.configuration.hostname) Error: too many commands that send no mail"),
                    log: (.info, "client sent \(self.junkCommands) junk commands (NOOP, RSET, VRFY, unknown…): disconnected"))
            }
        default:
            break
        }
        if self.link == .down, let actions = self.answerLocally(command, line) { return actions }
        switch command.verb {
        case .auth, .startTLS:
            if !self.pending.isEmpty {
                // Every reply before it must be in: AUTH and STARTTLS change what the next
                // lines mean.
                self.heldLine = line
                return []
            }
            return command.verb == .auth ? self.auth(command) : self.startTLS(command)
        case .ehlo:
            return self.forward(line, .ehlo)
        case .helo:
            return self.forward(line, .helo)
        case .mail:
            self.mailRefused = false
            if self.authenticated { return self.checkSending(line, .mail, kind: .message) }
            return self.forward(line, .mail)
        case .rcpt where self.authenticated && !self.mailRefused:
            return self.checkSending(line, .relay, kind: .recipients(1))
        case .rset:
            self.mailRefused = false
            return self.forward(line, .rset)
        case .data:
            return self.forward(line, .data)
        case .quit:
            return self.forward(line, .quit)
        case .bdat:
            return self.localReply(SMTPReply(code: 502, "5.5.1 Error: BDAT is not supported here"), error: true)
        case .xclient, .xforward:
            return self.localReply(SMTPReply(code: 550, "5.7.0 Error: insufficient authorization"), error: true)
        case .rcpt, .noop, .vrfy, .expn, .help, .etrn, .other:
            return self.forward(line, .relay)
        }
    }

    /// The commands the guard answers itself while the link is down (nil: not one of them).
    private mutating func answerLocally(_ command: SMTPCommand, _ line: SMTPLine) -> [SessionAction]? {
        switch command.verb {
        case .ehlo, .helo:
            let verb = command.verb == .ehlo ? "EHLO" : "HELO"
            guard command.argument.contains(where: { $0 != " " }) else {
                return self.localReply(SMTPReply(code: 501, "5.5.4 Syntax: \(verb) hostname"), error: true)
            }
            // A copy of its own: a slice would keep the whole read buffer alive for as long as
            // the client idles.
            self.hello = ByteBuffer(bytes: line.wire.readableBytesView)
            self.helloIsEHLO = command.verb == .ehlo
            self.ehloSeen = true
            self.inTransaction = false
            self.mailRefused = false
            if command.verb == .helo {
                self.offeredMechanisms = []
                return self.localReply(SMTPReply(code: 250, self.configuration.hostname))
            }
            let (reply, mechanisms) = self.ehloEditor.local()
            self.offeredMechanisms = mechanisms
            return self.localReply(reply)
        case .noop:
            return self.localReply(SMTPReply(code: 250, "2.0.0 Ok"))
        case .rset:
            self.mailRefused = false
            self.inTransaction = false
            return self.localReply(SMTPReply(code: 250, "2.0.0 Ok"))
        case .quit:
            return self.closeBoth(with: SMTPReply(code: 221, "2.0.0 Bye"), log: nil)
        case .rcpt:
            return self.localReply(SMTPReply(code: 503, "5.5.1 Error: need MAIL command"), error: true)
        case .data:
            return self.localReply(SMTPReply(code: 503, "5.5.1 Error: need RCPT command"), error: true)
        case .help:
            return self.localReply(SMTPReply(code: 214, "2.0.0 Commands: EHLO HELO AUTH STARTTLS MAIL RCPT DATA RSET NOOP QUIT"))
        case .vrfy, .expn, .etrn:
            // Before MAIL the backend is not asked: no address probing at the mail server's cost.
            return self.localReply(SMTPReply(code: 502, "5.5.1 Error: command not available before MAIL"))
        case .other:
            return self.localReply(SMTPReply(code: 502, "5.5.2 Error: command not recognized"), error: true)
        case .mail, .auth, .startTLS, .bdat, .xclient, .xforward:
            return nil
        }
    }

    /// What the client is offered in reply to EHLO, now.
    private var ehloEditor: EHLOEditor {
        EHLOEditor(
            hostname: self.configuration.hostname,
            offerAuth: self.client.authAllowed && !self.authenticated && (self.tls || !self.configuration.requireTLS),
            mechanisms: self.configuration.mechanisms,
            offerSTARTTLS: self.configuration.tlsAvailable && !self.tls,
            maxMessageSize: self.configuration.maxMessageSize)
    }

    /// Holds a MAIL or RCPT of an authenticated user until the guard has counted it.
    private mutating func checkSending(_ line: SMTPLine, _ pending: Pending, kind: SendingRequest.Kind) -> [SessionAction] {
        self.sendingCheck = (line, pending)
        let request = SendingRequest(time: Timestamp(nanoseconds: 0), username: self.authenticatedUsername, client: self.client.address, kind: kind, source: .proxy)
        return [.checkSending(request)]
    }

    /// The guard's word on the held MAIL or RCPT: pass it on, or answer 451 (a message, a
    /// locked account) or 452 (a recipient) in its place.
    public mutating func sendingVerdictReceived(_ decision: SendingDecision) -> [SessionAction] {
        guard let (line, pending) = self.sendingCheck else { return [] }
        self.sendingCheck = nil
        if decision.allowed { return self.forward(line, pending) }
        let reply: SMTPReply
        if pending == .mail || decision.excess == nil {
            reply = SMTPReply(code: 451, "4.7.1 \(decision.text)")
        } else {
            reply = SMTPReply(code: 452, "4.5.3 \(decision.text)")
        }
        if pending == .mail { self.mailRefused = true }
        return self.localReply(reply)
    }

    /// Passes a client line on as it came (CRLF included, no copy).
    private mutating func forward(_ line: SMTPLine, _ kind: Pending) -> [SessionAction] {
        self.sendToBackend(line.wire, expecting: kind)
    }

    /// `credentials`: this is the last line of an AUTH's credentials (the handler hears when
    /// it goes out, which is later if the link is not up yet).
    private mutating func sendToBackend(_ bytes: ByteBuffer, expecting kind: Pending, credentials: Bool = false) -> [SessionAction] {
        let wasEmpty = self.pending.isEmpty
        self.pending.append(kind)
        guard self.link == .up else {
            // The reply's place in the order is kept; the bytes wait for the link.
            self.deferred.append(Deferred(bytes: bytes, credentials: credentials))
            var actions: [SessionAction] = [.cancelTimer(.clientIdle)]
            if self.link == .down {
                self.link = .connecting
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

    private mutating func sendLine(_ text: String, expecting kind: Pending, credentials: Bool = false) -> [SessionAction] {
        var buffer = ByteBuffer(string: text)
        buffer.writeStaticString("\r\n")
        return self.sendToBackend(buffer, expecting: kind, credentials: credentials)
    }

    /// A reply of the guard's own, in its place in the reply order.
    private mutating func localReply(_ reply: SMTPReply, error: Bool = false) -> [SessionAction] {
        if error {
            self.errors += 1
            if self.errors > self.configuration.maxErrors {
                return self.closeBoth(
                    with: SMTPReply(code: 421, "4.7.0 \(self.configuration.hostname) Error: too many errors"),
                    log: (.info, "client made \(self.errors) protocol errors: disconnected"))
            }
        }
        if self.pending.isEmpty { return [.sendToClient(reply)] }
        self.pending.append(.local(reply))
        return []
    }

    // MARK: - STARTTLS

    private mutating func startTLS(_ command: SMTPCommand) -> [SessionAction] {
        if !self.configuration.tlsAvailable {
            return self.localReply(SMTPReply(code: 502, "5.5.1 Error: command not implemented"), error: true)
        }
        if self.tls { return self.localReply(SMTPReply(code: 554, "5.5.1 Error: TLS already active"), error: true) }
        if command.argumentBytes.readableBytes > 0 { return self.localReply(SMTPReply(code: 501, "5.5.4 Syntax: STARTTLS"), error: true) }
        if self.authenticated { return self.localReply(SMTPReply(code: 503, "5.5.1 Error: already authenticated"), error: true) }
        if self.inTransaction { return self.localReply(SMTPReply(code: 503, "5.5.1 Error: MAIL transaction in progress"), error: true) }
        if self.clientWaiting {
            // CVE-2011-0411 and its kin: whatever follows STARTTLS in the same flight would be
            // taken as sent inside TLS. It is neither answered nor kept.
            return self.closeBoth(
                with: SMTPReply(code: 554, "5.5.1 \(self.configuration.hostname) Error: command pipelined after STARTTLS, closing"),
                log: (.warning, "client sent data after STARTTLS before the TLS handshake (STARTTLS injection): disconnected"))
        }
        self.phase = .clientTLS(implicit: false)
        return [
            .sendToClient(SMTPReply(code: 220, "2.0.0 Ready to start TLS")), .startTLS, .cancelTimer(.clientIdle),
            .startTimer(.tlsHandshake, self.configuration.tlsHandshakeTimeout),
        ]
    }

    // MARK: - AUTH

    private mutating func auth(_ command: SMTPCommand) -> [SessionAction] {
        if !self.ehloSeen { return self.localReply(SMTPReply(code: 503, "5.5.1 Error: send HELO/EHLO first"), error: true) }
        if self.configuration.requireTLS && !self.tls && self.client.authAllowed {
            return self.localReply(SMTPReply(code: 538, "5.7.11 Encryption required for requested authentication mechanism"), error: true)
        }
        if self.offeredMechanisms.isEmpty {
            return self.localReply(SMTPReply(code: 503, "5.5.1 Error: authentication not enabled"), error: true)
        }
        if self.authenticated { return self.localReply(SMTPReply(code: 503, "5.5.1 Error: already authenticated"), error: true) }
        if self.inTransaction { return self.localReply(SMTPReply(code: 503, "5.5.1 Error: MAIL transaction in progress"), error: true) }
        let words = command.argument.split(separator: " ", omittingEmptySubsequences: true)
        guard let name = words.first, words.count <= 2 else {
            return self.localReply(SMTPReply(code: 501, "5.5.4 Syntax: AUTH mechanism"), error: true)
        }
        let mechanism = AuthMechanism(name: name)
        guard mechanism != .other, self.offeredMechanisms.contains(mechanism) else {
            return self.localReply(SMTPReply(code: 504, "5.5.4 Unrecognized authentication type"), error: true)
        }
        let initial = words.count == 2 ? String(words[1]) : nil
        switch mechanism {
        case .plain:
            guard let initial else {
                self.phase = .authClient(.plain)
                return [.sendToClient(SMTPReply(code: 334, ""))]
            }
            return self.authResponse(ByteBuffer(string: initial), step: .plain)
        case .login:
            guard let initial else {
                self.phase = .authClient(.loginUsername)
                return [.sendToClient(SMTPReply(code: 334, SASL.loginUsernamePrompt))]
            }
            return self.authResponse(ByteBuffer(string: initial), step: .loginUsername)
        case .cramMD5:
            if initial != nil {
                return self.localReply(SMTPReply(code: 501, "5.5.2 Error: CRAM-MD5 takes no initial response"), error: true)
            }
            self.phase = .authChallenge
            return self.sendLine("AUTH CRAM-MD5", expecting: .authChallenge)
        case .other:
            return self.localReply(SMTPReply(code: 504, "5.5.4 Unrecognized authentication type"), error: true)
        }
    }

    private func attempt(username: String, mechanism: AuthMechanism, credential: CredentialEvidence) -> AuthAttempt {
        AuthAttempt(
            time: Timestamp(nanoseconds: 0), client: self.client.address, clientPort: self.client.port, username: username,
            mechanism: mechanism, tls: self.tls, tlsVersion: self.tlsVersion, outcome: .pending, source: .proxy, credential: credential)
    }

    /// A SASL response line from the client (or the initial response of the AUTH command).
    private mutating func authResponse(_ line: ByteBuffer, step: AuthStep) -> [SessionAction] {
        let text = String(decoding: line.readableBytesView, as: UTF8.self)
        if text == "*" {
            // Counted as an error: AUTH then "*", over and over, must not be free.
            var actions = self.abandonAuth(step: step)
            actions += self.localReply(SMTPReply(code: 501, "5.7.0 Authentication aborted"), error: true)
            return actions
        }
        guard let bytes = SASL.decodeResponse(text) else { return self.malformedAuth(step: step) }
        do {
            switch step {
            case .plain:
                let credentials = try SASL.parsePlain(bytes)
                let evidence = credentials.evidence(hasher: self.configuration.hasher)
                let flight = AuthFlight(
                    mechanism: .plain, attempt: self.attempt(username: credentials.username, mechanism: .plain, credential: evidence),
                    backendLines: ["AUTH PLAIN " + (text.isEmpty ? "=" : text)])
                return self.decide(flight)
            case .loginUsername:
                let name = try SASL.parseLoginField(bytes)
                guard !name.isEmpty else { return self.malformedAuth(step: step) }
                self.phase = .authClient(.loginPassword(username: String(decoding: name, as: UTF8.self), usernameLine: Base64.encode(name)))
                return [.sendToClient(SMTPReply(code: 334, SASL.loginPasswordPrompt))]
            case .loginPassword(let username, let usernameLine):
                let password = try SASL.parseLoginField(bytes)
                let credentials = SASLPlainCredentials(authorizationID: "", username: username, password: password)
                let evidence = credentials.evidence(hasher: self.configuration.hasher)
                let flight = AuthFlight(
                    mechanism: .login, attempt: self.attempt(username: username, mechanism: .login, credential: evidence),
                    backendLines: ["AUTH LOGIN " + usernameLine, text.isEmpty ? "=" : text], loginUsernameLine: usernameLine)
                return self.decide(flight)
            case .cramResponse(let challenge):
                let (username, digest) = try SASL.parseCramMD5(bytes)
                // The password is not sent, but a default one can still be recognised.
                let evidence = CredentialEvidence(
                    passwordHash: nil,
                    isDefaultPassword: DefaultCredentials.isDefaultCramMD5(username: username, challenge: challenge, digestHex: digest))
                let flight = AuthFlight(
                    mechanism: .cramMD5, attempt: self.attempt(username: username, mechanism: .cramMD5, credential: evidence),
                    backendLines: [text])
                return self.decide(flight)
            }
        } catch {
            return self.malformedAuth(step: step)
        }
    }

    private mutating func malformedAuth(step: AuthStep) -> [SessionAction] {
        var actions = self.abandonAuth(step: step)
        actions += self.localReply(SMTPReply(code: 501, "5.5.2 Error: malformed authentication data"), error: true)
        return actions
    }

    /// Ends an AUTH exchange without a verdict; a CRAM-MD5 exchange is cancelled at the backend.
    private mutating func abandonAuth(step: AuthStep) -> [SessionAction] {
        self.phase = .commands
        if case .cramResponse = step { return self.sendLine("*", expecting: .swallow) }
        return []
    }

    private mutating func decide(_ flight: AuthFlight) -> [SessionAction] {
        self.phase = .authDeciding(flight)
        return [.decide(flight.attempt)]
    }

    /// Carries out the engine's verdict on a pending attempt (after its tarpit).
    private mutating func act(on decision: Decision, for flight: AuthFlight) -> [SessionAction] {
        var flight = flight
        switch decision.verdict {
        case .allow:
            var lines = flight.backendLines
            let first = lines.removeFirst()
            flight.backendLines = lines  // what is left to send (LOGIN's password)
            self.phase = .authBackend(flight)
            let kind: Pending = flight.mechanism == .login ? .authLoginPrompt : .authResult
            return self.sendLine(first, expecting: kind, credentials: lines.isEmpty)
        case .refuse, .tempFail:
            var actions: [SessionAction] = []
            if flight.mechanism == .cramMD5 { actions += self.sendLine("*", expecting: .swallow) }
            flight.attempt.outcome = decision.verdict == .refuse ? .failure : .tempFailure
            self.phase = .commands
            actions += self.finishAuth(flight, decision: decision)
            if !self.closing { actions.append(.startTimer(.clientIdle, self.configuration.commandTimeout)) }
            return actions
        }
    }

    /// The backend's answer to the credentials: ask the engine what to make of it.
    private mutating func authResult(_ reply: SMTPReply, flight: AuthFlight) -> [SessionAction] {
        var flight = flight
        // Were the credentials out? (A LOGIN refused at its username has not sent the password.)
        let sent = flight.backendLines.isEmpty
        flight.backendLines = []
        let outcome: AuthOutcome =
            reply.code == 235 ? .success : (reply.code < 500 && reply.code >= 400 ? (sent ? .unverified : .tempFailure) : .failure)
        let answered: [SessionAction] = sent ? [.backendAuthAnswered(code: reply.code)] : []
        if reply.code == 334 {
            // A mechanism step the guard did not expect: end the exchange at the backend. The
            // engine hears the attempt ended without a verdict; the client hears it failed.
            self.phase = .commands
            var actions = answered + self.sendLine("*", expecting: .swallow)
            flight.attempt.outcome = sent ? .unverified : .abandoned
            actions.append(.decide(flight.attempt))
            flight.attempt.outcome = .failure
            actions += self.finishAuth(flight, decision: Decision(verdict: .refuse))
            actions.append(.log(.warning, "the backend asked for an AUTH step the guard does not know (334): exchange cancelled"))
            return actions
        }
        flight.attempt.outcome = outcome
        self.phase = .authReporting(flight, code: reply.code)
        return answered + [.decide(flight.attempt)]
    }

    /// The engine's verdict on a reported outcome.
    private mutating func settle(_ flight: AuthFlight, decision: Decision) -> [SessionAction] {
        self.phase = .commands
        var decision = decision
        decision.delay = flight.delay
        switch flight.attempt.outcome {
        case .success where decision.verdict == .allow:
            self.authenticated = true
            self.authenticatedUsername = flight.attempt.username
            let reply = SMTPReply(code: 235, "2.7.0 Authentication successful")
            return [.sendToClient(reply), .recordAttempt(flight.attempt, replyCode: 235, decision: decision)]
        case .success:
            // The weak-credential firewall: the backend said yes to a default password.
            self.phase = .backendGone
            self.pending.removeAll()
            return [
                .sendToClient(self.configuration.failureReply),
                .recordAttempt(flight.attempt, replyCode: self.configuration.failureReply.code, decision: decision),
                .log(.critical, "backend accepted a default credential for \(flight.attempt.username.logSafe); login refused, backend session ended"),
                .closeBackend,
            ]
        default:
            return self.finishAuth(flight, decision: decision)
        }
    }

    /// Tells the client a failure (or temporary failure) and records the attempt.
    private mutating func finishAuth(_ flight: AuthFlight, decision: Decision) -> [SessionAction] {
        var decision = decision
        decision.delay = max(decision.delay, flight.delay)
        let temporary = flight.attempt.outcome == .tempFailure || flight.attempt.outcome == .unverified
        let reply = temporary ? self.configuration.tempFailureReply : self.configuration.failureReply
        var actions: [SessionAction] = [.sendToClient(reply), .recordAttempt(flight.attempt, replyCode: reply.code, decision: decision)]
        if decision.bansClient || decision.reasons.contains(.ipBanned) || decision.reasons.contains(.prefixBanned) {
            actions += self.closeBoth(
                with: SMTPReply(code: 421, "4.7.0 \(self.configuration.hostname) Service not available, closing transmission channel"),
                log: (.info, "client \(self.client.address) is banned: disconnected"))
        }
        return actions
    }

    // MARK: - Backend replies

    private mutating func handle(_ reply: SMTPReply, for pending: Pending) -> [SessionAction] {
        switch pending {
        case .ehlo:
            guard reply.isPositive else { return [.sendToClient(reply)] }
            self.ehloSeen = true
            self.inTransaction = false
            let (edited, mechanisms) = self.ehloEditor.edit(reply)
            self.offeredMechanisms = mechanisms
            return [.sendToClient(edited)]
        case .helo:
            guard reply.isPositive else { return [.sendToClient(reply)] }
            self.ehloSeen = true
            self.inTransaction = false
            self.offeredMechanisms = []
            return [.sendToClient(SMTPReply(code: reply.code, self.configuration.hostname))]
        case .mail:
            if reply.isPositive { self.inTransaction = true }
            return [.sendToClient(reply)]
        case .rset:
            if reply.isPositive { self.inTransaction = false }
            return [.sendToClient(reply)]
        case .data:
            if reply.code == 354 {
                self.phase = .data
                self.messageBytes = 0
                self.rateBytes = 0
                var actions: [SessionAction] = [.sendToClient(SMTPReply(code: 354, "End data with <CR><LF>.<CR><LF>"))]
                if self.configuration.dataMinRate > 0 { actions.append(.startTimer(.dataRate, ProxyConfiguration.dataRateInterval)) }
                return actions
            }
            if self.clientWaiting {
                // The client did not wait for 354 (RFC 2920 says it must): what it sent is
                // message data that would be read as commands.
                return [.sendToClient(reply)]
                    + self.closeBoth(
                        with: SMTPReply(code: 554, "5.5.1 \(self.configuration.hostname) Error: message sent before DATA was accepted, closing"),
                        log: (.warning, "client sent message data although DATA was refused (\(reply.code)): disconnected"))
            }
            return [.sendToClient(reply)]
        case .dataEnd:
            self.inTransaction = false
            // A message delivered: what came before it was not junk.
            if reply.isPositive { self.junkCommands = 0 }
            return [.sendToClient(reply)]
        case .quit:
            return self.closeBoth(with: SMTPReply(code: 221, "2.0.0 Bye"), log: nil)
        case .relay:
            return [.sendToClient(reply)]
        case .authChallenge:
            guard self.phase == .authChallenge else { return [] }
            if reply.code == 334 {
                self.phase = .authClient(.cramResponse(challenge: Base64.decode(reply.lines[0]) ?? []))
                return [.sendToClient(reply)]
            }
            self.phase = .commands
            return [.sendToClient(reply.isPositive ? reply : SMTPReply(code: 504, "5.5.4 Unrecognized authentication type"))]
        case .authLoginPrompt:
            guard case .authBackend(var flight) = self.phase else { return [] }
            if reply.code == 334 {
                // The password goes only where the backend asks for a password.
                let prompt = String(decoding: Base64.decode(reply.lines[0]) ?? [], as: UTF8.self).lowercased()
                if prompt.hasPrefix("user"), let usernameLine = flight.loginUsernameLine {
                    flight.loginUsernameLine = nil  // asked again despite the initial response: answer once
                    self.phase = .authBackend(flight)
                    return self.sendLine(usernameLine, expecting: .authLoginPrompt)
                }
                if prompt.hasPrefix("pass"), let password = flight.backendLines.first {
                    flight.backendLines = []
                    self.phase = .authBackend(flight)
                    return self.sendLine(password, expecting: .authResult, credentials: true)
                }
            }
            return self.authResult(reply, flight: flight)
        case .authResult:
            guard case .authBackend(let flight) = self.phase else { return [] }
            return self.authResult(reply, flight: flight)
        case .swallow:
            return []
        case .local(let reply):
            return [.sendToClient(reply)]
        }
    }

    /// After a backend reply: send the guard's own replies that were waiting their turn,
    /// settle the backend timer, and take up a held line.
    private mutating func afterReply() -> [SessionAction] {
        guard !self.closing else { return [] }
        var actions: [SessionAction] = []
        while case .local(let reply)? = self.pending.first {
            self.pending.removeFirst()
            actions.append(.sendToClient(reply))
        }
        if self.pending.isEmpty {
            actions.append(.cancelTimer(.backendReply))
            if self.wantsInput || self.heldLine != nil {
                actions.append(.startTimer(.clientIdle, self.configuration.commandTimeout))
            }
        } else {
            let timeout = self.pending.first == .dataEnd ? self.configuration.dataTimeout : self.configuration.replyTimeout
            actions.append(.startTimer(.backendReply, timeout))
        }
        if self.pending.isEmpty, self.phase == .commands, let held = self.heldLine {
            self.heldLine = nil
            actions += self.command(held)
        }
        return actions
    }

    // MARK: - The link

    /// The backend's answer to one of the guard's own steps while the link opens.
    private mutating func linkReply(_ reply: SMTPReply, to step: LinkStep) -> [SessionAction] {
        switch step {
        case .greeting:
            guard reply.code == 220 else {
                return self.backendTrouble("the backend refused the session with \(reply.code)")
            }
            if self.configuration.backendTLS == .starttls {
                return self.linkLine("EHLO \(self.configuration.hostname)", step: .tlsEHLO)
            }
            return self.identifyOrHello()
        case .tlsEHLO:
            guard reply.code == 250, EHLOEditor.offers("STARTTLS", in: reply) else {
                return self.backendTrouble("the backend does not offer STARTTLS (EHLO answered \(reply.code)); set backend.tls to none or tls")
            }
            return self.linkLine("STARTTLS", step: .starttls)
        case .starttls:
            guard reply.code == 220 else {
                return self.backendTrouble("the backend refused STARTTLS with \(reply.code)")
            }
            self.link = .tls
            return [.cancelTimer(.backendReply), .startBackendTLS, .startTimer(.backendConnect, self.configuration.connectTimeout)]
        case .identityEHLO:
            guard reply.code == 250, EHLOEditor.offers("XCLIENT", in: reply) else {
                return self.backendTrouble(
                    "the backend does not offer XCLIENT to the guard (EHLO answered \(reply.code)); "
                        + "add the guard's address to Postfix's smtpd_authorized_xclient_hosts, or set backend.identity")
            }
            return self.linkLine(
                ClientIdentity.xclientCommand(client: self.client.address, port: self.client.port), step: .identityXCLIENT)
        case .identityXCLIENT:
            guard reply.code == 220 else {
                return self.backendTrouble("the backend refused XCLIENT with \(reply.code)")
            }
            return self.sayHello()
        case .hello:
            guard reply.isPositive else {
                // The client was told 250 by the guard; what it asked for cannot be done now.
                return self.closeBoth(
                    with: SMTPReply(code: reply.code >= 500 ? 554 : 421, "\(reply.code >= 500 ? "5.7.0" : "4.3.0") \(self.configuration.hostname) Error: the mail server refused this session, closing"),
                    log: (.info, "the backend refused the client's EHLO/HELO with \(reply.code): session closed"))
            }
            if self.helloIsEHLO { self.backendMechanisms = EHLOEditor.backendMechanisms(reply) }
            return self.linkUp()
        }
    }

    /// One line of the guard's own to the backend, and the step its answer belongs to.
    private mutating func linkLine(_ text: String, step: LinkStep) -> [SessionAction] {
        var buffer = ByteBuffer(string: text)
        buffer.writeStaticString("\r\n")
        return self.linkSend(buffer, step: step)
    }

    private mutating func linkSend(_ bytes: ByteBuffer, step: LinkStep) -> [SessionAction] {
        self.link = .setup(step)
        return [.sendToBackend(bytes), .startTimer(.backendReply, self.configuration.replyTimeout)]
    }

    /// After the greeting (and STARTTLS to the backend): XCLIENT if configured, then the
    /// client's EHLO.
    private mutating func identifyOrHello() -> [SessionAction] {
        if self.configuration.identity == .xclient {
            return self.linkLine("EHLO \(self.configuration.hostname)", step: .identityEHLO)
        }
        return self.sayHello()
    }

    /// The client's EHLO or HELO again, as it came, so the backend knows its name (none if the
    /// client gave none).
    private mutating func sayHello() -> [SessionAction] {
        guard let hello = self.hello else { return self.linkUp() }
        return self.linkSend(hello, step: .hello)
    }

    /// The link is up: what waited for it goes out, in order.
    private mutating func linkUp() -> [SessionAction] {
        self.link = .up
        var actions: [SessionAction] = [.cancelTimer(.backendReply)]
        if let refused = self.mechanismNotAtBackend() { return actions + refused }
        for item in self.deferred {
            actions.append(.sendToBackend(item.bytes))
            if item.credentials { actions.append(.authCredentialsSent) }
        }
        self.deferred.removeAll()
        if !self.pending.isEmpty {
            actions.append(.startTimer(.backendReply, self.configuration.replyTimeout))
        }
        return actions
    }

    /// The AUTH waiting for the link uses a mechanism the backend does not offer the guard
    /// (the client was offered the configured ones before the backend was asked): it is not
    /// passed on, and nothing is counted against the client.
    private mutating func mechanismNotAtBackend() -> [SessionAction]? {
        guard let offered = self.backendMechanisms else { return nil }
        let log = { (mechanism: AuthMechanism) -> SessionAction in
            .log(.error, "the backend does not offer AUTH \(mechanism.rawValue) to the guard; remove it from smtp.auth_mechanisms or enable it at the backend")
        }
        switch self.phase {
        case .authBackend(var flight) where !offered.contains(flight.mechanism):
            self.pending.removeAll()
            self.deferred.removeAll()
            self.phase = .commands
            flight.attempt.outcome = .abandoned
            var actions: [SessionAction] = [log(flight.mechanism), .decide(flight.attempt)]
            flight.attempt.outcome = .tempFailure
            actions += self.finishAuth(flight, decision: Decision(verdict: .tempFail, delay: flight.delay))
            if !self.closing { actions.append(.startTimer(.clientIdle, self.configuration.commandTimeout)) }
            return actions
        case .authChallenge where !offered.contains(.cramMD5):
            self.pending.removeAll()
            self.deferred.removeAll()
            self.phase = .commands
            return [
                log(.cramMD5), .sendToClient(SMTPReply(code: 504, "5.5.4 Unrecognized authentication type")),
                .startTimer(.clientIdle, self.configuration.commandTimeout),
            ]
        default:
            return nil
        }
    }

    // MARK: - DATA

    private mutating func dataLine(_ line: SMTPLine) -> [SessionAction] {
        let length = line.wire.readableBytes
        if length == 3 && line.wire.getInteger(at: line.wire.readerIndex, as: UInt8.self) == UInt8(ascii: ".") {
            self.phase = .commands
            return [.cancelTimer(.dataRate)] + self.sendToBackend(line.wire, expecting: .dataEnd)
        }
        self.messageBytes += length
        self.rateBytes += length
        if self.messageBytes > self.configuration.maxMessageSize {
            return self.closeBoth(
                with: SMTPReply(code: 552, "5.3.4 \(self.configuration.hostname) Error: message larger than \(self.configuration.maxMessageSize) bytes"),
                log: (.info, "client sent a message over \(self.configuration.maxMessageSize) bytes: message dropped, disconnected"))
        }
        if line.wire.containsNUL {
            // NUL has no place in a message (RFC 5322), and a backend that drops it could
            // read ".<NUL>" as the end of data.
            return self.closeBoth(
                with: SMTPReply(code: 554, "5.6.0 \(self.configuration.hostname) Error: NUL byte in message data"),
                log: (.warning, "client sent a NUL byte in message data: message dropped, disconnected (SMTP smuggling defence)"))
        }
        return [.sendToBackend(line.wire)]
    }

    // MARK: - Ending

    private mutating func backendTrouble(_ reason: String) -> [SessionAction] {
        self.closeBoth(
            with: SMTPReply(code: 421, "4.3.0 \(self.configuration.hostname) Service temporarily unavailable, try again later"),
            log: (.error, reason))
    }

    private mutating func closeBoth(with reply: SMTPReply, log: (SessionLogLevel, String)?) -> [SessionAction] {
        guard !self.closing else { return [] }
        if case .clientTLS = self.phase {
            // Mid handshake nothing can be said to the client.
            return self.closeQuietly(log: log ?? (.info, "session ended during the client's TLS handshake"))
        }
        var actions: [SessionAction] = []
        if let log { actions.append(.log(log.0, log.1)) }
        actions += self.abandonFlight(replyCode: reply.code)
        self.closing = true
        self.phase = .closed
        self.pending.removeAll()
        self.heldLine = nil
        actions.append(.sendToClient(reply))
        actions += [.closeBackend, .closeClient]
        actions += self.cancelAllTimers()
        return actions
    }

    /// Ends the session with nothing more said to the client (it is in a TLS handshake).
    private mutating func closeQuietly(log: (SessionLogLevel, String)) -> [SessionAction] {
        guard !self.closing else { return [] }
        self.closing = true
        self.phase = .closed
        self.pending.removeAll()
        self.heldLine = nil
        return [.log(log.0, log.1), .closeBackend, .dropClient] + self.cancelAllTimers()
    }

    private func cancelAllTimers() -> [SessionAction] {
        SessionTimer.allCases.map { .cancelTimer($0) }
    }

}
