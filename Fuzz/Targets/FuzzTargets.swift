// What each fuzz target does with its bytes, and the invariants it checks. The libFuzzer
// executables (Fuzz/Session, Fuzz/Lines, Fuzz/SASL, Fuzz/Replies) call these; so does the
// regression test that replays every kept corpus file (Tests/FuzzRegressionTests). A broken
// invariant is a precondition failure: libFuzzer saves the input, the test crashes on it.

#if canImport(Glibc)
import Glibc
#endif
import GuardCore
import NIOCore
import SMTPWire

public enum FuzzTargets {
    // MARK: - SMTP line framing

    /// Arbitrary bytes, fed in pieces of varying size, with a limit taken from the first byte.
    public static func lines(_ data: [UInt8]) {
        guard let first = data.first else { return }
        let limit = 16 + Int(first) * 4
        var framer = SMTPLineFramer()
        var buffer = ByteBuffer()
        var position = 1
        var step = 1
        while position < data.count {
            let end = min(data.count, position + step)
            buffer.writeBytes(data[position..<end])
            position = end
            step = step % 7 + 1
            while let framed = framer.next(from: &buffer, limit: limit, detectTLS: step == 3) {
                if case .line(let line) = framed {
                    let bytes = Array(line.wire.readableBytesView)
                    precondition(bytes.count <= limit, "a line over the limit was returned")
                    precondition(bytes.count >= 2 && bytes[bytes.count - 2] == 0x0D && bytes[bytes.count - 1] == 0x0A, "a line without CRLF")
                    precondition(!bytes.dropLast(2).contains(0x0D) && !bytes.dropLast(2).contains(0x0A), "a bare CR or LF inside a line")
                }
            }
        }
    }

    // MARK: - SASL payloads

    public static func sasl(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        if let decoded = Base64.decode(text) {
            precondition(Base64.decode(Base64.encode(decoded)) == decoded, "base64 does not round-trip")
        }
        let payloads = [data, Base64.decode(text) ?? []]
        for bytes in payloads {
            if let plain = try? SASL.parsePlain(bytes) {
                for field in [Array(plain.authorizationID.utf8), Array(plain.username.utf8), plain.password] {
                    precondition(!field.contains(0) && !field.contains(0x0D) && !field.contains(0x0A), "PLAIN field with NUL, CR or LF")
                }
                precondition(!plain.username.isEmpty, "PLAIN with an empty username")
                _ = plain.evidence(hasher: PasswordHasher(nonce: [1, 2, 3]))
            }
            if let field = try? SASL.parseLoginField(bytes) {
                precondition(!field.contains(0x0D) && !field.contains(0x0A) && !field.contains(0), "LOGIN field with NUL, CR or LF")
            }
            if let (name, digest) = try? SASL.parseCramMD5(bytes) {
                precondition(digest.utf8.count == 32 && !name.utf8.contains(where: { $0 < 0x20 }), "bad CRAM-MD5 parse")
            }
            _ = SMTPCommand(line: ByteBuffer(bytes: bytes))
        }
    }

    // MARK: - PROXY protocol headers

    /// A load balancer's header: whatever parses must say what the guard itself would write.
    public static func proxyHeader(_ data: [UInt8]) {
        var buffer = ByteBuffer(bytes: data)
        guard let parsed = try? ProxyHeader.parse(&buffer) else { return }
        precondition(buffer.readerIndex <= ProxyHeader.maxV2Length, "a header longer than allowed was taken")
        if case .proxied(let source, let sourcePort, let destination, let destinationPort) = parsed {
            let again = ClientIdentity.proxyV2(source: source, sourcePort: sourcePort, destination: destination, destinationPort: destinationPort)
            var copy = again
            precondition((try? ProxyHeader.parse(&copy)) == parsed, "a PROXY v2 header does not read back")
        }
    }

    // MARK: - Backend replies

    /// What a backend may send: lines into replies, as BackendReplyHandler does.
    public static func replies(_ data: [UInt8]) {
        var framer = SMTPLineFramer()
        var accumulator = SMTPReplyAccumulator()
        var buffer = ByteBuffer(bytes: data)
        while case .line(let line)? = framer.next(from: &buffer, limit: 4096) {
            guard let reply = try? accumulator.feed(line.content) else { continue }
            precondition((100...599).contains(reply.code), "reply code out of range")
            let encoded = reply.encoded
            precondition(encoded.hasSuffix("\r\n"), "an encoded reply without CRLF")
            _ = EHLOEditor(hostname: "mx.example", offerAuth: true, mechanisms: [.plain, .login], offerSTARTTLS: true, maxMessageSize: 1000)
                .edit(reply)
        }
    }

    // MARK: - The session machine

    /// Bytes from a client to the session machine, against a scripted backend. The first byte
    /// picks the setup; in the rest, 0xFF followed by a byte is an event (TLS handshake done,
    /// a timer, the backend closing or talking out of turn), 0xFE ends a piece of input (what
    /// came before arrives together); every other byte is client input.
    public static func session(_ data: [UInt8]) {
        guard let setup = data.first else { return }
        var proxy = ProxyConfiguration()
        proxy.hostname = "mx.example.org"
        proxy.identity = [.none, .xclient, .proxyV1, .proxyV2][Int(setup & 3)]
        if setup & 4 != 0 {
            proxy.tls.certificate = "guard.pem"
            proxy.tls.key = "guard.key"
        }
        proxy.requireTLS = setup & 8 != 0
        proxy.backendTLS = setup & 16 != 0 ? .starttls : .none
        proxy.maxMessageSize = 4096
        proxy.maxJunkCommands = 20
        let implicitTLS = setup & 32 != 0 && setup & 4 != 0
        let client = ClientInfo(
            address: IPAddress(setup & 64 != 0 ? "2001:db8::7" : "192.0.2.7")!, port: 4000,
            localAddress: IPAddress(setup & 64 != 0 ? "2001:db8::1" : "192.0.2.1")!, localPort: 25, authAllowed: true, implicitTLS: implicitTLS)
        var policy = GuardPolicy()
        policy.bans.jitter = 0
        policy.maxTrackedKeys = 1000  // the tables are sized by this: small, so each run is quick
        let clock = ManualClock()
        var run = SessionRun(
            machine: SMTPSessionStateMachine(configuration: SessionConfiguration(proxy, hasher: PasswordHasher(nonce: [9])), client: client),
            guardEngine: Guard(policy: policy, clock: clock, seed: 1), clock: clock)
        run.clientTLSPending = implicitTLS
        run.apply(run.machine.clientAdmitted())
        var index = 1
        var piece: [UInt8] = []
        while index < data.count {
            let byte = data[index]
            index += 1
            if byte == 0xFE {
                run.client(piece)
                piece = []
            } else if byte == 0xFF, index < data.count {
                run.client(piece)
                piece = []
                run.event(data[index])
                index += 1
            } else {
                piece.append(byte)
            }
        }
        run.client(piece)
        run.apply(run.machine.clientClosed())
    }
}

/// One fuzzed session: the machine, a backend that answers like Postfix, and the checks.
struct SessionRun {
    var machine: SMTPSessionStateMachine
    let guardEngine: Guard
    let clock: ManualClock
    var input = ByteBuffer()
    var framer = SMTPLineFramer()
    var backend = FuzzBackend()
    var replies: [SMTPReply] = []
    var backendOpen = false
    var backendClosed = false
    var clientTLSPending = false
    var tarpit = false
    var steps = 0

    mutating func client(_ bytes: [UInt8]) {
        guard !bytes.isEmpty, !self.machine.isClosed else { return }
        if self.clientTLSPending {
            // Plain bytes where the TLS layer expects a handshake.
            self.apply(self.machine.tlsFailed("plain text during the handshake"))
            return
        }
        self.input.writeBytes(bytes)
        self.settle()
    }

    mutating func event(_ code: UInt8) {
        switch code % 8 {
        case 0:
            if self.clientTLSPending {
                self.clientTLSPending = false
                self.apply(self.machine.tlsEstablished(version: "TLSv1.3"))
            }
        case 1:
            self.backendClosed = true
            self.apply(self.machine.backendClosed())
        case 2:
            if self.backendOpen && !self.backendClosed { self.replies.append(SMTPReply(code: 250, "unsolicited")) }
        case 3:
            self.apply(self.machine.clientClosed())
        default:
            let timers = SessionTimer.allCases
            self.apply(self.machine.timerFired(timers[Int(code) % timers.count]))
        }
        self.settle()
    }

    mutating func settle() {
        var progress = true
        while progress && self.steps < 20_000 {
            self.steps += 1
            progress = false
            if self.tarpit {
                self.tarpit = false
                self.apply(self.machine.timerFired(.tarpit))
                progress = true
            } else if !self.replies.isEmpty {
                let reply = self.replies.removeFirst()
                self.apply(self.machine.backendReplyReceived(reply, clientWaiting: self.input.readableBytes > 0))
                progress = true
            } else if !self.clientTLSPending, self.machine.wantsInput {
                let limit = self.machine.lineLimit(peek: self.input)
                if let framed = self.framer.next(from: &self.input, limit: limit, detectTLS: self.machine.expectsCommand) {
                    self.apply(self.machine.clientLineReceived(framed, more: self.input.readableBytes > 0))
                    progress = true
                }
            }
        }
    }

    /// As the handler does: the engine's answers are handed over once the batch is done.
    mutating func apply(_ actions: [SessionAction]) {
        var answers: [(inout SMTPSessionStateMachine) -> [SessionAction]] = []
        defer {
            for answer in answers { self.apply(answer(&self.machine)) }
        }
        for action in actions {
            switch action {
            case .connectBackend:
                precondition(!self.backendOpen, "backend connected twice")
                self.backendOpen = true
                self.apply(self.machine.backendConnected())
                self.replies.append(SMTPReply(code: 220, "backend ESMTP"))
            case .sendToBackend(let bytes):
                precondition(self.backendOpen && !self.backendClosed, "bytes sent to a backend that is not open")
                let view = Array(bytes.readableBytesView)
                if view.starts(with: ClientIdentity.proxyV2Signature) || view.starts(with: Array("PROXY ".utf8)) { continue }
                precondition(!self.clientTLSPending || self.machine.isClosed, "backend traffic during the client's handshake")
                for (i, byte) in view.enumerated() {
                    if byte == 0x0A { precondition(i > 0 && view[i - 1] == 0x0D, "a bare LF reached the backend") }
                    if byte == 0x0D { precondition(i + 1 < view.count && view[i + 1] == 0x0A, "a bare CR reached the backend") }
                }
                if let reply = self.backend.receive(view) { self.replies.append(reply) }
            case .sendToClient(let reply):
                precondition(!self.clientTLSPending, "a plain reply while the client's TLS handshake is under way")
                _ = reply.encoded
            case .startTLS:
                precondition(self.input.readableBytes == 0, "TLS started with client bytes waiting (STARTTLS injection)")
                self.clientTLSPending = true
            case .startBackendTLS:
                self.apply(self.machine.backendTLSEstablished())
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
                answers.append { $0.confirmationReceived(confirmation) }
            case .authCredentialsSent, .backendAuthAnswered:
                break
            case .checkSending(var request):
                request.time = self.clock.now()
                let decision = self.guardEngine.checkSending(request)
                answers.append { $0.sendingVerdictReceived(decision) }
            case .startTimer(.tarpit, let duration):
                self.clock.advance(by: duration)
                self.tarpit = true
            case .recordAttempt, .startTimer, .cancelTimer, .log, .backendFailed, .closeClient, .dropClient:
                break
            case .closeBackend:
                self.backendClosed = true
            }
        }
    }
}

/// A backend that answers like Postfix with AUTH, STARTTLS and XCLIENT.
struct FuzzBackend {
    var inData = false
    var loginStep = 0

    mutating func receive(_ line: [UInt8]) -> SMTPReply? {
        let text = String(decoding: line.dropLast(2), as: UTF8.self)
        if self.inData {
            if text == "." {
                self.inData = false
                return SMTPReply(code: 250, "2.0.0 Ok: queued")
            }
            return nil
        }
        if self.loginStep > 0 {
            self.loginStep -= 1
            return self.loginStep == 0 ? SMTPReply(code: 535, "5.7.8 failed") : SMTPReply(code: 334, "UGFzc3dvcmQ6")
        }
        let upper = text.uppercased()
        if upper.hasPrefix("EHLO") {
            return SMTPReply(code: 250, lines: ["backend", "PIPELINING", "SIZE 10240000", "STARTTLS", "XCLIENT ADDR PORT NAME", "AUTH PLAIN LOGIN CRAM-MD5", "CHUNKING"])
        }
        if upper.hasPrefix("HELO") { return SMTPReply(code: 250, "backend") }
        if upper == "STARTTLS" || upper.hasPrefix("XCLIENT") { return SMTPReply(code: 220, "ready") }
        if upper.hasPrefix("AUTH LOGIN") {
            self.loginStep = 1
            return SMTPReply(code: 334, "UGFzc3dvcmQ6")
        }
        if upper.hasPrefix("AUTH CRAM-MD5") { return SMTPReply(code: 334, "PDEyMzRAYmFja2VuZD4=") }
        if upper.hasPrefix("AUTH PLAIN") {
            return text.hasSuffix("AGFkbWluAGFkbWlu") ? SMTPReply(code: 235, "2.7.0 ok") : SMTPReply(code: 535, "5.7.8 failed")
        }
        if upper == "DATA" {
            self.inData = true
            return SMTPReply(code: 354, "go ahead")
        }
        if upper == "QUIT" { return SMTPReply(code: 221, "bye") }
        if upper == "*" { return SMTPReply(code: 501, "aborted") }
        return SMTPReply(code: 250, "2.0.0 Ok")
    }
}

/// Reading corpus files without Foundation.
public enum FuzzCorpus {
    public struct ReadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Runs each file through a target (the fuzz executables built without libFuzzer).
    public static func replay(_ paths: ArraySlice<String>, _ target: ([UInt8]) -> Void) throws {
        for path in paths {
            target(try self.read(path))
            print("ok \(path)")
        }
    }

    public static func read(_ path: String) throws -> [UInt8] {
        guard let file = fopen(path, "rb") else { throw ReadError(description: "\(path): cannot open") }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes
    }
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Runs libFuzzer's driver with one target (the fuzz executables' entry point).
public enum FuzzDriver {
    /// One input, as LLVMFuzzerTestOneInput receives it.
    public static func one(_ start: UnsafePointer<UInt8>?, _ count: Int, _ target: ([UInt8]) -> Void) -> CInt {
        guard let start else { return 0 }
        target(Array(UnsafeBufferPointer(start: start, count: count)))
        return 0
    }

    nonisolated(unsafe) static var target: (([UInt8]) -> Void)?

    public static func run(argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ target: @escaping ([UInt8]) -> Void) -> CInt {
        self.target = target
        var count = argc
        var arguments = argv
        return LLVMFuzzerRunDriver(&count, &arguments) { start, length in
            guard let start else { return 0 }
            FuzzDriver.target?(Array(UnsafeBufferPointer(start: start, count: length)))
            return 0
        }
    }
}
#endif
