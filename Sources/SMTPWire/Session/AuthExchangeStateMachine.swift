// AuthExchangeStateMachine: one AUTH exchange, from the AUTH command to the client's answer.
//
// The guard speaks SASL with the client itself (PLAIN, LOGIN; CRAM-MD5's challenge comes from
// the backend), so that the engine decides on every attempt before the backend sees a
// credential: decide, tarpit, confirm after the tarpit (a ban may have come meanwhile), pass
// the credentials on, report the backend's answer, settle. The session machine holds it in
// its phase and turns its `AuthAction`s into session actions; it touches no queue, link or
// timer itself.
//
// Trusts: nothing the client sends. The client's base64 lines are held only until they go
// to the backend or are dropped; they are secrets and appear in no log, event or reply.

import GuardCore
import NIOCore

/// What an AUTH exchange asks of the session machine, in order.
enum AuthAction: Equatable {
    /// The exchange is over: the session takes commands again. (Comes before anything that
    /// may end the session, so that an ending finds no attempt in flight.)
    case finished
    /// Tell the client this now.
    case tell(SMTPReply)
    /// A protocol error of the client's (counted against it), in its place in the reply order.
    case refuse(SMTPReply)
    /// A line to the backend, and what its answer will be; `credentials`: the last line of them.
    case toBackend(String, expecting: PendingReply, credentials: Bool)
    case decide(AuthAttempt)
    case report(AuthAttempt)
    case confirm(AuthAttempt)
    /// Hold the client's answer this long; its idle timer rests meanwhile.
    case tarpit(Duration)
    case backendAnswered(code: Int)
    case record(AuthAttempt, replyCode: Int, decision: Decision)
    case authenticated(username: String)
    /// The backend accepted a default credential: its session is spoiled (it would relay for
    /// that user) and is dropped; nothing it still owes is awaited.
    case defaultCredentialAccepted
    case closeBackend
    /// The client is banned: the session ends.
    case banned
    /// The client may speak again: its idle timer runs (unless the session ended).
    case resumeIdle
    case log(SessionLogLevel, String)
}

struct AuthExchangeStateMachine {
    /// What the guard is waiting for from the client.
    enum Step: Equatable {
        case plain
        case loginUsername
        case loginPassword(username: String, usernameLine: String)
        case cramResponse(challenge: [UInt8])
    }

    /// One attempt on its way. Holds the client's base64 lines until they are forwarded or
    /// dropped.
    struct Flight: Equatable {
        var mechanism: AuthMechanism
        var attempt: AuthAttempt
        /// Lines to send the backend, in order (the first is a command or a response).
        var backendLines: [String]
        var delay: Duration = .zero
        /// LOGIN: the username line, in case the backend ignores the initial response and asks.
        var loginUsernameLine: String?
    }

    enum State: Equatable {
        case client(Step)
        /// CRAM-MD5: waiting for the backend's challenge.
        case challenge
        case deciding(Flight)
        case tarpit(Flight, Decision)
        /// After the tarpit, waiting for the engine to confirm the attempt may still go ahead.
        case confirming(Flight, Decision)
        case backend(Flight)
        case reporting(Flight, code: Int)
    }

    /// Who is authenticating, and how (fixed for the exchange).
    struct Context: Equatable {
        var client: ClientInfo
        var tls: Bool
        var tlsVersion: String?
    }

    private(set) var state: State = .challenge
    private let context: Context
    private let configuration: SessionConfiguration
    private var replies: SessionReplies { self.configuration.replies }

    init(configuration: SessionConfiguration, context: Context) {
        self.configuration = configuration
        self.context = context
    }

    /// Waiting for a line from the client.
    var awaitsClient: Bool {
        if case .client = self.state { return true }
        return false
    }

    /// The backend's answer to the credentials is with the engine.
    var isReporting: Bool {
        if case .reporting = self.state { return true }
        return false
    }

    // MARK: - Events

    /// AUTH's argument (a mechanism and maybe an initial response), among the mechanisms the
    /// client was offered.
    mutating func begin(_ argument: String, offered: [AuthMechanism]) -> [AuthAction] {
        let words = argument.split(separator: " ", omittingEmptySubsequences: true)
        guard let name = words.first, words.count <= 2 else { return [.finished, .refuse(self.replies.authSyntax)] }
        let mechanism = AuthMechanism(name: name)
        guard mechanism != .other, offered.contains(mechanism) else { return [.finished, .refuse(self.replies.unrecognizedMechanism)] }
        let initial = words.count == 2 ? ByteBuffer(string: String(words[1])) : nil
        switch mechanism {
        case .plain, .login:
            let step: Step = mechanism == .plain ? .plain : .loginUsername
            self.state = .client(step)
            guard let initial else { return [.tell(mechanism == .plain ? self.replies.plainPrompt : self.replies.loginUsernamePrompt)] }
            return self.response(initial)
        case .cramMD5:
            if initial != nil { return [.finished, .refuse(self.replies.cramInitialResponse)] }
            self.state = .challenge
            return [.toBackend("AUTH CRAM-MD5", expecting: .authChallenge, credentials: false)]
        case .other:
            return [.finished, .refuse(self.replies.unrecognizedMechanism)]
        }
    }

    /// A SASL response line from the client (or the initial response of the AUTH command).
    mutating func response(_ line: ByteBuffer) -> [AuthAction] {
        guard case .client(let step) = self.state else { return [] }
        let text = String(decoding: line.readableBytesView, as: UTF8.self)
        if text == "*" {
            // Counted as an error: AUTH then "*", over and over, must not be free.
            return self.abandon(step) + [.refuse(self.replies.authAborted)]
        }
        guard let bytes = SASL.decodeResponse(text) else { return self.malformed(step) }
        do {
            switch step {
            case .plain:
                let credentials = try SASL.parsePlain(bytes)
                let evidence = credentials.evidence(hasher: self.configuration.hasher)
                return self.decide(
                    Flight(
                        mechanism: .plain, attempt: self.attempt(username: credentials.username, mechanism: .plain, credential: evidence),
                        backendLines: ["AUTH PLAIN " + (text.isEmpty ? "=" : text)]))
            case .loginUsername:
                let name = try SASL.parseLoginField(bytes)
                guard !name.isEmpty else { return self.malformed(step) }
                self.state = .client(.loginPassword(username: String(decoding: name, as: UTF8.self), usernameLine: Base64.encode(name)))
                return [.tell(self.replies.loginPasswordPrompt)]
            case .loginPassword(let username, let usernameLine):
                let password = try SASL.parseLoginField(bytes)
                let credentials = SASLPlainCredentials(authorizationID: "", username: username, password: password)
                let evidence = credentials.evidence(hasher: self.configuration.hasher)
                return self.decide(
                    Flight(
                        mechanism: .login, attempt: self.attempt(username: username, mechanism: .login, credential: evidence),
                        backendLines: ["AUTH LOGIN " + usernameLine, text.isEmpty ? "=" : text], loginUsernameLine: usernameLine))
            case .cramResponse(let challenge):
                let (username, digest) = try SASL.parseCramMD5(bytes)
                // The password is not sent, but a default one can still be recognised.
                let evidence = CredentialEvidence(
                    passwordHash: nil,
                    isDefaultPassword: DefaultCredentials.isDefaultCramMD5(username: username, challenge: challenge, digestHex: digest))
                return self.decide(
                    Flight(
                        mechanism: .cramMD5, attempt: self.attempt(username: username, mechanism: .cramMD5, credential: evidence),
                        backendLines: [text]))
            }
        } catch {
            return self.malformed(step)
        }
    }

    /// The client's line was longer than `smtp.max_auth_line`.
    mutating func lineTooLong() -> [AuthAction] {
        guard case .client(let step) = self.state else { return [] }
        return self.abandon(step) + [.refuse(self.replies.authLineTooLong)]
    }

    /// The engine's answer to `.decide` (before the backend, or on the backend's answer).
    mutating func verdictReceived(_ decision: Decision) -> [AuthAction] {
        switch self.state {
        case .deciding(var flight):
            flight.delay = decision.delay
            if decision.delay > .zero {
                self.state = .tarpit(flight, decision)
                return [.tarpit(decision.delay)]
            }
            return self.act(on: decision, for: flight)
        case .reporting(let flight, _):
            return self.settle(flight, decision: decision)
        default:
            return []
        }
    }

    /// The tarpit ran out.
    mutating func tarpitEnded() -> [AuthAction] {
        guard case .tarpit(let flight, let decision) = self.state else { return [] }
        if decision.verdict == .allow {
            // A ban decided while this attempt waited (another connection of the client
            // spent its budget) must stop it before the backend sees it.
            self.state = .confirming(flight, decision)
            return [.confirm(flight.attempt)]
        }
        return self.act(on: decision, for: flight)
    }

    /// The engine's answer to `.confirm`: go ahead as decided before the tarpit, or refuse.
    mutating func confirmationReceived(_ confirmation: Decision) -> [AuthAction] {
        guard case .confirming(let flight, let decision) = self.state else { return [] }
        if confirmation.verdict == .allow { return self.act(on: decision, for: flight) }
        var refusal = confirmation
        refusal.delay = flight.delay
        return self.act(on: refusal, for: flight)
    }

    /// A backend reply to one of the exchange's lines.
    mutating func backendReply(_ reply: SMTPReply, for kind: PendingReply) -> [AuthAction] {
        switch (kind, self.state) {
        case (.authChallenge, .challenge):
            if reply.code == 334 {
                self.state = .client(.cramResponse(challenge: Base64.decode(reply.lines[0]) ?? []))
                return [.tell(reply)]
            }
            return [.finished, .tell(reply.isPositive ? reply : self.replies.unrecognizedMechanism)]
        case (.authLoginPrompt, .backend(var flight)):
            if reply.code == 334 {
                // The password goes only where the backend asks for a password.
                let prompt = String(decoding: Base64.decode(reply.lines[0]) ?? [], as: UTF8.self).lowercased()
                if prompt.hasPrefix("user"), let usernameLine = flight.loginUsernameLine {
                    flight.loginUsernameLine = nil  // asked again despite the initial response: answer once
                    self.state = .backend(flight)
                    return [.toBackend(usernameLine, expecting: .authLoginPrompt, credentials: false)]
                }
                if prompt.hasPrefix("pass"), let password = flight.backendLines.first {
                    flight.backendLines = []
                    self.state = .backend(flight)
                    return [.toBackend(password, expecting: .authResult, credentials: true)]
                }
            }
            return self.result(reply, flight: flight)
        case (.authResult, .backend(let flight)):
            return self.result(reply, flight: flight)
        default:
            return []
        }
    }

    /// The link to the backend is up, and it offers the guard these mechanisms. The client
    /// was offered the configured ones before the backend was asked: an exchange waiting for
    /// the link with one the backend lacks is not passed on, and nothing is counted against
    /// the client (nil: nothing to do here).
    func backendOffers(_ offered: Set<AuthMechanism>) -> [AuthAction]? {
        let log = { (mechanism: AuthMechanism) -> AuthAction in
            .log(.error, "the backend does not offer AUTH \(mechanism.rawValue) to the guard; remove it from smtp.auth_mechanisms or enable it at the backend")
        }
        switch self.state {
        case .backend(var flight) where !offered.contains(flight.mechanism):
            flight.attempt.outcome = .abandoned
            var actions: [AuthAction] = [.finished, log(flight.mechanism), .report(flight.attempt)]
            flight.attempt.outcome = .tempFailure
            actions += self.finish(flight, decision: Decision(verdict: .tempFail, delay: flight.delay))
            return actions + [.resumeIdle]
        case .challenge where !offered.contains(.cramMD5):
            return [.finished, log(.cramMD5), .tell(self.replies.unrecognizedMechanism), .resumeIdle]
        default:
            return nil
        }
    }

    /// The session ends with the attempt under way: its outcome will never be known. The
    /// engine hears it was abandoned (it is no longer in flight) and the event log records it.
    /// `linkUp`: the link was up, so lines that left the guard reached the backend.
    func abandoned(replyCode: Int, linkUp: Bool) -> [AuthAction] {
        switch self.state {
        case .tarpit(var flight, let decision), .confirming(var flight, let decision):
            if decision.verdict == .allow {
                flight.attempt.outcome = .abandoned
                return [.report(flight.attempt), .record(flight.attempt, replyCode: replyCode, decision: decision)]
            }
            flight.attempt.outcome = .failure  // refused by the guard, counted already
            return [.record(flight.attempt, replyCode: replyCode, decision: decision)]
        case .backend(var flight):
            // Once the credentials are out, the backend may have checked them: unverified.
            // (While the link was still opening they were not out.)
            flight.attempt.outcome = flight.backendLines.isEmpty && linkUp ? .unverified : .abandoned
            return [
                .report(flight.attempt),
                .record(flight.attempt, replyCode: replyCode, decision: Decision(verdict: .allow, delay: flight.delay)),
            ]
        default:
            return []
        }
    }

    // MARK: - Steps

    private func attempt(username: String, mechanism: AuthMechanism, credential: CredentialEvidence) -> AuthAttempt {
        AuthAttempt(
            time: Timestamp(nanoseconds: 0), client: self.context.client.address, clientPort: self.context.client.port,
            username: username, mechanism: mechanism, tls: self.context.tls, tlsVersion: self.context.tlsVersion, outcome: .pending,
            source: .proxy, credential: credential)
    }

    private func malformed(_ step: Step) -> [AuthAction] {
        self.abandon(step) + [.refuse(self.replies.authMalformed)]
    }

    /// Ends the exchange without a verdict; a CRAM-MD5 exchange is cancelled at the backend.
    private func abandon(_ step: Step) -> [AuthAction] {
        if case .cramResponse = step { return [.finished, .toBackend("*", expecting: .swallow, credentials: false)] }
        return [.finished]
    }

    private mutating func decide(_ flight: Flight) -> [AuthAction] {
        self.state = .deciding(flight)
        return [.decide(flight.attempt)]
    }

    /// Carries out the engine's verdict on a pending attempt (after its tarpit).
    private mutating func act(on decision: Decision, for flight: Flight) -> [AuthAction] {
        var flight = flight
        switch decision.verdict {
        case .allow:
            var lines = flight.backendLines
            let first = lines.removeFirst()
            flight.backendLines = lines  // what is left to send (LOGIN's password)
            self.state = .backend(flight)
            let kind: PendingReply = flight.mechanism == .login ? .authLoginPrompt : .authResult
            return [.toBackend(first, expecting: kind, credentials: lines.isEmpty)]
        case .refuse, .tempFail:
            var actions: [AuthAction] = []
            if flight.mechanism == .cramMD5 { actions.append(.toBackend("*", expecting: .swallow, credentials: false)) }
            flight.attempt.outcome = decision.verdict == .refuse ? .failure : .tempFailure
            actions.append(.finished)
            return actions + self.finish(flight, decision: decision) + [.resumeIdle]
        }
    }

    /// The backend's answer to the credentials: ask the engine what to make of it.
    private mutating func result(_ reply: SMTPReply, flight: Flight) -> [AuthAction] {
        var flight = flight
        // Were the credentials out? (A LOGIN refused at its username has not sent the password.)
        let sent = flight.backendLines.isEmpty
        flight.backendLines = []
        let answered: [AuthAction] = sent ? [.backendAnswered(code: reply.code)] : []
        if reply.code == 334 {
            // A mechanism step the guard did not expect: end the exchange at the backend. The
            // engine hears the attempt ended without a verdict; the client hears it failed.
            var actions = answered + [.finished, .toBackend("*", expecting: .swallow, credentials: false)]
            flight.attempt.outcome = sent ? .unverified : .abandoned
            actions.append(.report(flight.attempt))
            flight.attempt.outcome = .failure
            actions += self.finish(flight, decision: Decision(verdict: .refuse))
            actions.append(.log(.warning, "the backend asked for an AUTH step the guard does not know (334): exchange cancelled"))
            return actions
        }
        flight.attempt.outcome =
            reply.code == 235 ? .success : (reply.code < 500 && reply.code >= 400 ? (sent ? .unverified : .tempFailure) : .failure)
        self.state = .reporting(flight, code: reply.code)
        return answered + [.decide(flight.attempt)]
    }

    /// The engine's verdict on a reported outcome.
    private func settle(_ flight: Flight, decision: Decision) -> [AuthAction] {
        var decision = decision
        decision.delay = flight.delay
        switch flight.attempt.outcome {
        case .success where decision.verdict == .allow:
            return [
                .finished, .authenticated(username: flight.attempt.username), .tell(self.replies.authSucceeded),
                .record(flight.attempt, replyCode: 235, decision: decision),
            ]
        case .success:
            // The weak-credential firewall: the backend said yes to a default password.
            let reply = self.replies.authFailed
            return [
                .defaultCredentialAccepted, .tell(reply), .record(flight.attempt, replyCode: reply.code, decision: decision),
                .log(.critical, "backend accepted a default credential for \(flight.attempt.username.logSafe); login refused, backend session ended"),
                .closeBackend,
            ]
        default:
            return [.finished] + self.finish(flight, decision: decision)
        }
    }

    /// Tells the client a failure (or temporary failure) and records the attempt.
    private func finish(_ flight: Flight, decision: Decision) -> [AuthAction] {
        var decision = decision
        decision.delay = max(decision.delay, flight.delay)
        let temporary = flight.attempt.outcome == .tempFailure || flight.attempt.outcome == .unverified
        let reply = temporary ? self.replies.authTempFailed : self.replies.authFailed
        var actions: [AuthAction] = [.tell(reply), .record(flight.attempt, replyCode: reply.code, decision: decision)]
        if decision.bansClient || decision.reasons.contains(.ipBanned) || decision.reasons.contains(.prefixBanned) {
            actions.append(.banned)
        }
        return actions
    }
}
