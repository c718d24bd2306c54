// BackendPreambleStateMachine: the guard's own steps when it opens its connection to the
// backend (the link), before the client's commands may pass: the backend's greeting,
// STARTTLS to the backend, XCLIENT, then the client's EHLO or HELO said again. Opened only
// when the client starts something the backend must see; until it is up, what the client
// sent waits here, in order.
//
// Trusts: the backend's replies only for their codes and, for EHLO, the keywords it offers.

import GuardCore
import NIOCore

/// What opening the link asks of the session machine.
enum PreambleAction: Equatable {
    /// Bytes of the guard's own to the backend.
    case send(ByteBuffer)
    /// The backend owes an answer now: its reply timer runs.
    case awaitReply
    /// Put TLS on the backend connection (after its 220 to STARTTLS).
    case startTLS
    /// The link is up: what waited for it may go.
    case ready
    /// The backend cannot serve this session.
    case failed(String)
    /// The backend refused the client's EHLO or HELO (with this code) after the guard had
    /// answered it 250.
    case helloRefused(code: Int)
}

struct BackendPreambleStateMachine {
    enum State: Equatable {
        case down
        case connecting
        /// Waiting for the backend's answer to a step of the guard's own.
        case setup(Step)
        /// Waiting for the guard's own TLS handshake with the backend.
        case tls
        case up
    }

    /// The guard's own steps, in order (each waits for its answer).
    enum Step: Equatable {
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

    private(set) var state: State = .down
    /// What the client sent while the link was not up yet, for the backend once it is.
    private var deferred: [Deferred] = []
    /// The client's last EHLO or HELO line as it came, said again to the backend at link-up.
    private var hello: ByteBuffer?
    private var helloIsEHLO = false
    /// The mechanisms the backend offers the guard (from its answer to the client's EHLO
    /// said again), once known.
    private(set) var backendMechanisms: Set<AuthMechanism>?
    private let configuration: SessionConfiguration
    private let client: ClientInfo

    init(configuration: SessionConfiguration, client: ClientInfo) {
        self.configuration = configuration
        self.client = client
    }

    var isUp: Bool { self.state == .up }
    var isDown: Bool { self.state == .down }
    var isSettingUp: Bool {
        if case .setup = self.state { return true }
        return false
    }

    // MARK: - Before the link

    /// The client's EHLO or HELO, answered by the guard: it is said again at link-up.
    mutating func remember(hello line: ByteBuffer, isEHLO: Bool) {
        // A copy of its own: a slice would keep the whole read buffer alive for as long as
        // the client idles.
        self.hello = ByteBuffer(bytes: line.readableBytesView)
        self.helloIsEHLO = isEHLO
    }

    /// Bytes that must wait for the link; true when the connection must be opened now.
    mutating func hold(_ bytes: ByteBuffer, credentials: Bool) -> Bool {
        self.deferred.append(Deferred(bytes: bytes, credentials: credentials))
        guard self.state == .down else { return false }
        self.state = .connecting
        return true
    }

    /// What waited for the link, to go out now (the link is up).
    mutating func takeDeferred() -> [Deferred] {
        defer { self.deferred.removeAll() }
        return self.deferred
    }

    /// What waited is not to be sent after all.
    mutating func dropDeferred() {
        self.deferred.removeAll()
    }

    // MARK: - Events

    /// The TCP (or implicit TLS) connection is open: the PROXY header, if configured, then
    /// the backend's greeting is awaited.
    mutating func connected() -> [PreambleAction]? {
        guard self.state == .connecting else { return nil }
        var actions: [PreambleAction] = []
        let client = self.client
        switch self.configuration.identity {
        case .proxyV1:
            let header = ClientIdentity.proxyV1(
                source: client.address, sourcePort: client.port, destination: client.localAddress, destinationPort: client.localPort)
            actions.append(.send(ByteBuffer(string: header)))
        case .proxyV2:
            actions.append(
                .send(
                    ClientIdentity.proxyV2(
                        source: client.address, sourcePort: client.port, destination: client.localAddress, destinationPort: client.localPort)))
        case .none, .xclient:
            break
        }
        self.state = .setup(.greeting)
        return actions + [.awaitReply]
    }

    /// The guard's TLS handshake with the backend is done.
    mutating func tlsEstablished() -> [PreambleAction]? {
        guard self.state == .tls else { return nil }
        return self.identifyOrHello()
    }

    /// The backend's answer to the current step (only while setting up).
    mutating func reply(_ reply: SMTPReply) -> [PreambleAction] {
        guard case .setup(let step) = self.state else { return [] }
        switch step {
        case .greeting:
            guard reply.code == 220 else { return [.failed("the backend refused the session with \(reply.code)")] }
            if self.configuration.backendTLS == .starttls {
                return self.line("EHLO \(self.configuration.hostname)", step: .tlsEHLO)
            }
            return self.identifyOrHello()
        case .tlsEHLO:
            guard reply.code == 250, EHLOEditor.offers("STARTTLS", in: reply) else {
                return [.failed("the backend does not offer STARTTLS (EHLO answered \(reply.code)); set backend.tls to none or tls")]
            }
            return self.line("STARTTLS", step: .starttls)
        case .starttls:
            guard reply.code == 220 else { return [.failed("the backend refused STARTTLS with \(reply.code)")] }
            self.state = .tls
            return [.startTLS]
        case .identityEHLO:
            guard reply.code == 250, EHLOEditor.offers("XCLIENT", in: reply) else {
                return [
                    .failed(
                        "the backend does not offer XCLIENT to the guard (EHLO answered \(reply.code)); "
                            + "add the guard's address to Postfix's smtpd_authorized_xclient_hosts, or set backend.identity")
                ]
            }
            return self.line(ClientIdentity.xclientCommand(client: self.client.address, port: self.client.port), step: .identityXCLIENT)
        case .identityXCLIENT:
            guard reply.code == 220 else { return [.failed("the backend refused XCLIENT with \(reply.code)")] }
            return self.sayHello()
        case .hello:
            // The client was told 250 by the guard; what it asked for cannot be done now.
            guard reply.isPositive else { return [.helloRefused(code: reply.code)] }
            if self.helloIsEHLO { self.backendMechanisms = EHLOEditor.backendMechanisms(reply) }
            self.state = .up
            return [.ready]
        }
    }

    /// Why a backendConnect timer that ran out ends the session (nil: it no longer matters).
    var connectTimeoutReason: String? {
        switch self.state {
        case .tls: return "the TLS handshake with the backend did not finish within \(self.configuration.connectTimeout.compactText)"
        case .connecting: return "the backend did not accept a connection within \(self.configuration.connectTimeout.compactText)"
        default: return nil
        }
    }

    // MARK: - Steps

    private mutating func line(_ text: String, step: Step) -> [PreambleAction] {
        var buffer = ByteBuffer(string: text)
        buffer.writeStaticString("\r\n")
        return self.send(buffer, step: step)
    }

    private mutating func send(_ bytes: ByteBuffer, step: Step) -> [PreambleAction] {
        self.state = .setup(step)
        return [.send(bytes), .awaitReply]
    }

    /// After the greeting (and STARTTLS to the backend): XCLIENT if configured, then the
    /// client's EHLO.
    private mutating func identifyOrHello() -> [PreambleAction] {
        if self.configuration.identity == .xclient {
            return self.line("EHLO \(self.configuration.hostname)", step: .identityEHLO)
        }
        return self.sayHello()
    }

    /// The client's EHLO or HELO again, as it came, so the backend knows its name (none if the
    /// client gave none).
    private mutating func sayHello() -> [PreambleAction] {
        guard let hello = self.hello else {
            self.state = .up
            return [.ready]
        }
        return self.send(hello, step: .hello)
    }
}
