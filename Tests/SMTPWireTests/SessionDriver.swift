// Drives SMTPSessionStateMachine the way the handler does, against a scripted backend
// that answers like a small Postfix and a real Guard on a manual clock. It records what
// the client is told ("S: "), what the backend receives ("B< "), tarpits, logs and closes:
// the golden transcripts compare that record.

import GuardCore
import NIOCore

@testable import SMTPWire

/// A backend that answers like Postfix with Dovecot SASL: alice/secret and admin/admin
/// are valid; bob is valid with CRAM-MD5.
struct ScriptedBackend {
    var inData = false
    var loginUser: String?
    var xclientAllowed = true
    /// Never answers AUTH (a hung or dying backend).
    var silentOnAuth = false
    /// Asks for the username again although it came as the LOGIN initial response.
    var ignoreLoginInitialResponse = false
    /// Answers every password with 454 (a backend whose auth service is penalising or gone).
    var tempFailAuth = false
    /// Answers AUTH PLAIN with a step the guard does not know.
    var unexpectedChallenge = false
    /// Refuses DATA (no valid recipients).
    var refuseData = false
    /// Sends no greeting at all.
    var noGreeting = false
    /// Does not offer STARTTLS (to the guard's own STARTTLS).
    var noSTARTTLS = false
    private var loginAskedAgain = false
    var greeting = SMTPReply(code: 220, "backend.internal ESMTP Postfix (Debian/GNU) 3.7.11")

    mutating func receive(_ line: String) -> SMTPReply? {
        if self.inData {
            if line == "." {
                self.inData = false
                return SMTPReply(code: 250, "2.0.0 Ok: queued as 4XyZ")
            }
            return nil
        }
        if self.loginAskedAgain {
            self.loginAskedAgain = false
            self.loginUser = String(decoding: Base64.decode(line) ?? [], as: UTF8.self)
            return SMTPReply(code: 334, "UGFzc3dvcmQ6")
        }
        if let user = self.loginUser {
            self.loginUser = nil
            let password = String(decoding: Base64.decode(line) ?? [], as: UTF8.self)
            return self.check(user: user, password: password)
        }
        let upper = line.uppercased()
        if upper.hasPrefix("PROXY ") { return nil }  // the PROXY v1 header is taken, not answered
        if upper.hasPrefix("EHLO") {
            var lines = ["backend.internal", "PIPELINING", "SIZE 10240000", "VRFY", "ETRN", "STARTTLS", "AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5", "AUTH=PLAIN LOGIN", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING"]
            if self.noSTARTTLS { lines.removeAll { $0 == "STARTTLS" } }
            if self.xclientAllowed { lines.insert("XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT", at: 5) }
            return SMTPReply(code: 250, lines: lines)
        }
        if upper.hasPrefix("HELO") { return SMTPReply(code: 250, "backend.internal") }
        if upper == "STARTTLS" { return SMTPReply(code: 220, "2.0.0 Ready to start TLS") }
        if upper.hasPrefix("XCLIENT") { return SMTPReply(code: 220, "backend.internal ESMTP Postfix (Debian/GNU) 3.7.11") }
        if upper.hasPrefix("AUTH") && self.silentOnAuth { return nil }
        if upper.hasPrefix("AUTH PLAIN ") && self.unexpectedChallenge { return SMTPReply(code: 334, "Zm9v") }
        if upper.hasPrefix("AUTH LOGIN ") && self.ignoreLoginInitialResponse {
            self.loginAskedAgain = true
            return SMTPReply(code: 334, "VXNlcm5hbWU6")
        }
        if upper.hasPrefix("AUTH PLAIN ") {
            let bytes = Base64.decode(line.dropFirst(11)) ?? []
            let parts = bytes.split(separator: 0, omittingEmptySubsequences: false)
            guard parts.count == 3 else { return SMTPReply(code: 535, "5.7.8 Error: authentication failed: Invalid authentication mechanism") }
            return self.check(user: String(decoding: parts[1], as: UTF8.self), password: String(decoding: parts[2], as: UTF8.self))
        }
        if upper.hasPrefix("AUTH LOGIN ") {
            self.loginUser = String(decoding: Base64.decode(line.dropFirst(11)) ?? [], as: UTF8.self)
            return SMTPReply(code: 334, "UGFzc3dvcmQ6")
        }
        if upper == "AUTH CRAM-MD5" { return SMTPReply(code: 334, "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+") }
        if line == "*" { return SMTPReply(code: 501, "5.7.0 Authentication aborted") }
        if let decoded = Base64.decode(line), let text = String(validating: decoded, as: UTF8.self), text.contains(" ") {
            return text.hasPrefix("bob ") ? SMTPReply(code: 235, "2.7.0 Authentication successful") : SMTPReply(code: 535, "5.7.8 Error: authentication failed: authentication failure")
        }
        if upper.hasPrefix("MAIL") { return SMTPReply(code: 250, "2.1.0 Ok") }
        if upper.hasPrefix("RCPT") { return SMTPReply(code: 250, "2.1.5 Ok") }
        if upper == "DATA" && self.refuseData { return SMTPReply(code: 554, "5.5.1 Error: no valid recipients") }
        if upper == "DATA" {
            self.inData = true
            return SMTPReply(code: 354, "End data with <CR><LF>.<CR><LF>")
        }
        if upper == "RSET" || upper == "NOOP" { return SMTPReply(code: 250, "2.0.0 Ok") }
        if upper == "QUIT" { return SMTPReply(code: 221, "2.0.0 Bye") }
        return SMTPReply(code: 502, "5.5.2 Error: command not recognized")
    }

    func check(user: String, password: String) -> SMTPReply {
        if self.tempFailAuth { return SMTPReply(code: 454, "4.7.0 Temporary authentication failure: Connection lost to authentication server") }
        return Self.check(user: user, password: password)
    }

    static func check(user: String, password: String) -> SMTPReply {
        if user == "busy" { return SMTPReply(code: 454, "4.7.0 Temporary authentication failure: Connection lost to authentication server") }
        if (user == "alice" && password == "secret") || (user == "admin" && password == "admin") {
            return SMTPReply(code: 235, "2.7.0 Authentication successful")
        }
        return SMTPReply(code: 535, "5.7.8 Error: authentication failed: authentication failure")
    }
}

extension ProxyConfiguration {
    /// The defaults, but AUTH allowed without TLS: most tests are about AUTH itself.
    static var plainAuth: ProxyConfiguration {
        var proxy = ProxyConfiguration()
        proxy.requireTLS = false
        return proxy
    }
}

struct SessionDriver {
    var machine: SMTPSessionStateMachine
    var backend = ScriptedBackend()
    let guardEngine: Guard
    let clock: ManualClock
    var transcript: [String] = []
    var records: [(AuthAttempt, Int, Decision)] = []
    private var input = ByteBuffer()
    private var framer = SMTPLineFramer()
    private var replies: [SMTPReply] = []
    private var backendBuffer = ByteBuffer()
    private var backendFramer = SMTPLineFramer()
    private var tarpitPending = false
    /// The client was told to start TLS and has not finished its handshake.
    private(set) var clientTLSPending = false
    var closed = false
    var backendOpen = false
    /// Run out tarpits at once (false: they stay pending, as if the client were waiting).
    var autoFireTarpit = true
    /// How often the last credential line went to the backend, and the codes it answered them with.
    var credentialsSent = 0
    var authAnswers: [Int] = []

    init(
        proxy: ProxyConfiguration = .plainAuth, policy: GuardPolicy = GuardPolicy(), client: String = "203.0.113.5",
        implicitTLS: Bool = false, guardEngine: Guard? = nil, clock: ManualClock = ManualClock()
    ) {
        var proxy = proxy
        proxy.hostname = "mx.example.org"
        let address = IPAddress(client)!
        let info = ClientInfo(
            address: address, port: 40001, localAddress: IPAddress(address.isIPv4 ? "192.0.2.25" : "2001:db8::25:1")!, localPort: 25,
            authAllowed: proxy.authNetworks.contains(address), implicitTLS: implicitTLS)
        self.clock = clock
        self.guardEngine = guardEngine ?? Guard(policy: policy, clock: clock, seed: 1)
        self.machine = SMTPSessionStateMachine(
            configuration: SessionConfiguration(proxy, hasher: PasswordHasher(nonce: Array("test".utf8))), client: info)
    }

    mutating func start() {
        // On an implicit TLS port the client begins with its handshake.
        self.clientTLSPending = self.machine.client.implicitTLS
        self.run(self.machine.clientAdmitted())
        self.settle()
    }

    /// Sends raw client bytes (all at once, as a pipelining client would).
    mutating func client(_ text: String) {
        self.client(Array(text.utf8))
    }

    mutating func client(_ bytes: [UInt8]) {
        self.input.writeBytes(bytes)
        self.settle()
    }

    /// Sends client bytes one at a time.
    mutating func clientByteByByte(_ text: String) {
        self.clientByteByByte(Array(text.utf8))
    }

    mutating func clientByteByByte(_ bytes: [UInt8]) {
        for byte in bytes {
            self.input.writeInteger(byte)
            self.settle()
        }
    }

    /// The client's TLS handshake completes.
    mutating func clientTLSHandshake(version: String = "TLSv1.3") {
        guard self.clientTLSPending else {
            self.transcript.append("# (no TLS handshake was asked for)")
            return
        }
        self.clientTLSPending = false
        self.transcript.append("# TLS handshake done (\(version))")
        self.run(self.machine.tlsEstablished(version: version))
        self.settle()
    }

    /// The backend sends a reply nobody asked for.
    mutating func backendSends(_ reply: SMTPReply) {
        self.replies.append(reply)
        self.settle()
    }

    mutating func clientGoesAway() {
        self.run(self.machine.clientClosed())
        self.settle()
    }

    mutating func backendGoesAway() {
        self.run(self.machine.backendClosed())
        self.settle()
    }

    mutating func fire(_ timer: SessionTimer) {
        self.run(self.machine.timerFired(timer))
        self.settle()
    }

    /// Delivers backend replies and client lines until nothing moves.
    private mutating func settle() {
        var progress = true
        var rounds = 0
        while progress && rounds < 10_000 {
            rounds += 1
            progress = false
            if self.tarpitPending {
                self.tarpitPending = false
                self.run(self.machine.timerFired(.tarpit))
                progress = true
                continue
            }
            if self.clientTLSPending && self.input.readableBytes > 0 && !self.closed {
                // Plain text where the TLS layer expects a handshake: it fails.
                self.input.clear()
                self.run(self.machine.tlsFailed("plain text received during the TLS handshake"))
                progress = true
                continue
            }
            if !self.replies.isEmpty {
                let reply = self.replies.removeFirst()
                self.run(self.machine.backendReplyReceived(reply, clientWaiting: self.input.readableBytes > 0))
                progress = true
                continue
            }
            if self.machine.wantsInput {
                let limit = self.machine.lineLimit(peek: self.input)
                if let framed = self.framer.next(from: &self.input, limit: limit, detectTLS: self.machine.expectsCommand) {
                    self.run(self.machine.clientLineReceived(framed, more: self.input.readableBytes > 0))
                    progress = true
                }
            }
        }
    }

    /// Carries out one batch of actions as the handler does: the engine's answers are events
    /// of their own, handed to the machine once the batch is done.
    private mutating func run(_ actions: [SessionAction]) {
        var answers: [(inout SMTPSessionStateMachine) -> [SessionAction]] = []
        defer {
            for answer in answers { self.run(answer(&self.machine)) }
        }
        for action in actions {
            switch action {
            case .connectBackend:
                self.backendOpen = true
                self.run(self.machine.backendConnected())
                if !self.backend.noGreeting { self.replies.append(self.backend.greeting) }
            case .sendToBackend(var bytes) where bytes.readableBytesView.starts(with: ClientIdentity.proxyV2Signature):
                // The PROXY v2 header is binary by design: shown in hex, not as lines.
                self.transcript.append("B< [PROXY v2] " + bytes.readableBytesView.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined())
                bytes.moveReaderIndex(forwardBy: bytes.readableBytes)
            case .sendToBackend(var bytes):
                // Exactly the bytes the backend gets, cut at CRLF; anything else that is not
                // printable is shown escaped (<CR>, <LF>, <NUL>, <xHH>).
                self.backendBuffer.writeBuffer(&bytes)
                while let line = Self.takeCRLFLine(from: &self.backendBuffer) {
                    self.transcript.append("B< " + Self.escaped(line))
                    let text = String(decoding: line, as: UTF8.self)
                    if let reply = self.backend.receive(text) { self.replies.append(reply) }
                }
            case .startTLS:
                self.transcript.append("# TLS handshake with the client begins")
                self.clientTLSPending = true
            case .startBackendTLS:
                self.transcript.append("# TLS handshake with the backend")
                self.run(self.machine.backendTLSEstablished())
            case .sendToClient(let reply):
                for line in reply.encoded.split(separator: "\r\n", omittingEmptySubsequences: false) where !line.isEmpty {
                    self.transcript.append("S: " + line)
                }
            case .decide(var attempt):
                attempt.time = self.clock.now()
                let decision = self.guardEngine.decide(attempt)
                answers.append { $0.verdictReceived(decision) }
            case .report(var attempt):
                attempt.time = self.clock.now()
                _ = self.guardEngine.decide(attempt)
            case .confirm(var attempt):
                attempt.time = self.clock.now()
                let confirmation = self.guardEngine.confirm(attempt)
                if confirmation.verdict != .allow {
                    self.transcript.append("# confirm \(attempt.username) -> \(confirmation.verdict.rawValue) \(confirmation.reasons.map(\.rawValue).joined(separator: ","))")
                }
                answers.append { $0.confirmationReceived(confirmation) }
            case .authCredentialsSent:
                self.credentialsSent += 1
            case .backendAuthAnswered(let code):
                self.authAnswers.append(code)
            case .checkSending(var request):
                request.time = self.clock.now()
                let decision = self.guardEngine.checkSending(request)
                if !decision.allowed { self.transcript.append("# sending refused \(request.username) \(decision.excess?.limitText ?? "locked")") }
                answers.append { $0.sendingVerdictReceived(decision) }
            case .recordAttempt(let attempt, let code, let decision):
                self.records.append((attempt, code, decision))
                self.transcript.append("# auth \(attempt.username) \(attempt.mechanism.rawValue) \(attempt.outcome.rawValue) -> \(decision.verdict.rawValue) \(decision.reasons.map(\.rawValue).joined(separator: ","))")
            case .startTimer(.tarpit, let duration):
                self.transcript.append("# tarpit \(duration.compactText)")
                if self.autoFireTarpit {
                    self.clock.advance(by: duration)
                    self.tarpitPending = true
                }
            case .startTimer, .cancelTimer:
                break
            case .closeBackend:
                if self.backendOpen { self.transcript.append("# backend closed") }
                self.backendOpen = false
            case .closeClient, .dropClient:
                if !self.closed { self.transcript.append("# client closed") }
                self.closed = true
            case .backendFailed(let reason):
                self.transcript.append("# log error: \(reason)")
            case .log(let level, let message):
                self.transcript.append("# log \(level): \(message)")
            }
        }
    }

    static func takeCRLFLine(from buffer: inout ByteBuffer) -> [UInt8]? {
        let view = buffer.readableBytesView
        var index = view.startIndex
        while index < view.endIndex - 1 {
            if view[index] == 0x0D && view[index + 1] == 0x0A {
                let line = Array(view[view.startIndex..<index])
                buffer.moveReaderIndex(forwardBy: index - view.startIndex + 2)
                return line
            }
            index += 1
        }
        return nil
    }

    static func escaped(_ bytes: [UInt8]) -> String {
        var out = ""
        for byte in bytes {
            switch byte {
            case 0x0D: out += "<CR>"
            case 0x0A: out += "<LF>"
            case 0x00: out += "<NUL>"
            case 0x20...0x7E: out.unicodeScalars.append(Unicode.Scalar(byte))
            default: out += "<x" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true) + ">"
            }
        }
        return out
    }
}
