// ClientSessionHandler in EmbeddedChannel: the backend is another EmbeddedChannel on the
// same loop, time is advanced by hand.

import GuardCore
import Logging
import NIOCore
import NIOEmbedded
import SMTPWire
import Testing

@testable import SMTPProxy

/// Hands out a prepared EmbeddedChannel as the backend connection.
final class EmbeddedConnector: BackendConnector, @unchecked Sendable {
    let backend: EmbeddedChannel
    var connects = 0
    var fail = false

    init(loop: EmbeddedEventLoop) {
        self.backend = EmbeddedChannel(loop: loop)
    }

    func connect(to target: HostPort, timeout: Duration, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        self.connects += 1
        if self.fail { return eventLoop.makeFailedFuture(ChannelError.connectTimeout(.seconds(1))) }
        return eventLoop.makeSucceededFuture(self.backend)
    }
}

struct HandlerHarness {
    let loop = EmbeddedEventLoop()
    let client: EmbeddedChannel
    let connector: EmbeddedConnector
    let guardEngine: Guard
    let clock = ManualClock()

    init(address: String = "203.0.113.9", policy: GuardPolicy = GuardPolicy(), registry: ConnectionRegistry? = nil, guardEngine: Guard? = nil) throws {
            var proxy = ProxyConfiguration()
        proxy.requireTLS = false
        proxy.hostname = "mx.example.org"
        self.connector = EmbeddedConnector(loop: self.loop)
        self.guardEngine = guardEngine ?? Guard(policy: policy, clock: self.clock, seed: 3)
        let context = ProxyContext(
            configuration: proxy, session: SessionConfiguration(proxy, hasher: PasswordHasher(nonce: Array("n".utf8))),
            guardEngine: self.guardEngine, events: DiscardingEventSink(),
            registry: registry ?? ConnectionRegistry(maxTotal: 100, maxPerClient: 10), logger: Logger(label: "test"),
            connector: self.connector)
        self.client = EmbeddedChannel(loop: self.loop)
        try self.client.pipeline.syncOperations.addHandler(ClientSessionHandler(shared: context))
        self.client.localAddress = try SocketAddress(ipAddress: "192.0.2.25", port: 25)
        self.client.remoteAddress = try SocketAddress(ipAddress: address, port: 40000)
    }

    func connect() throws {
        try self.client.connect(to: self.client.remoteAddress!).wait()
    }

    /// Everything written to the client so far.
    func toClient() throws -> String {
        var out = ""
        while let buffer = try self.client.readOutbound(as: ByteBuffer.self) { out += String(buffer: buffer) }
        return out
    }

    func toBackend() throws -> String {
        var out = ""
        while let buffer = try self.connector.backend.readOutbound(as: ByteBuffer.self) { out += String(buffer: buffer) }
        return out
    }

    func backendSays(_ text: String) throws {
        try self.connector.backend.writeInbound(ByteBuffer(string: text))
    }

    func clientSays(_ text: String) throws {
        try self.client.writeInbound(ByteBuffer(string: text))
    }

    /// Greeting and EHLO done: both by the guard, with no backend connection.
    func open() throws {
        try self.connect()
        #expect(try self.toClient() == "220 mx.example.org ESMTP\r\n")
        try self.clientSays("EHLO client\r\n")
        #expect(try self.toClient().hasPrefix("250-mx.example.org\r\n250-PIPELINING\r\n"))
        #expect(self.connector.connects == 0)
        #expect(try self.toBackend() == "")
    }

    /// The link has just been opened: the backend greets, hears the client's EHLO again and
    /// answers it.
    func linkUp() throws {
        #expect(self.connector.connects == 1)
        #expect(try self.toBackend() == "")
        try self.backendSays("220 backend ESMTP Postfix\r\n")
        #expect(try self.toBackend() == "EHLO client\r\n")
        try self.backendSays("250-backend\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n")
    }
}

@Suite("Proxy handler")
struct HandlerTests {
    @Test("a banned client is refused at connect, before any backend connection")
    func bannedAtConnect() throws {
        let h = try HandlerHarness()
        h.guardEngine.placeBan(.ip(IPAddress("203.0.113.9")!), duration: .seconds(600))
        try h.connect()
        #expect(try h.toClient() == "554 5.7.1 mx.example.org Access denied\r\n")
        #expect(h.connector.connects == 0)
        #expect(!h.client.isActive)
    }

    @Test("the tarpit is an event-loop timer: the backend sees the attempt only when it runs out")
    func tarpitTimer() throws {
        var policy = GuardPolicy()
        policy.tarpit.afterFailures = 0
        policy.tarpit.initial = .seconds(3)
        let h = try HandlerHarness(policy: policy)
        try h.open()
        try h.clientSays("AUTH PLAIN \(Base64.encode(Array("\0alice\0pw1".utf8)))\r\nNOOP\r\n")
        #expect(try h.toBackend() == "")
        h.loop.advanceTime(by: .milliseconds(2999))
        #expect(try h.toBackend() == "")
        #expect(h.connector.connects == 0)  // no backend process is held during the tarpit
        h.loop.advanceTime(by: .milliseconds(1))
        try h.linkUp()
        #expect(try h.toBackend() == "AUTH PLAIN \(Base64.encode(Array("\0alice\0pw1".utf8)))\r\n")
        try h.backendSays("535 5.7.8 Error: authentication failed: authentication failure\r\n")
        #expect(try h.toClient() == "535 5.7.8 Authentication credentials invalid\r\n")
        // The pipelined NOOP went to the backend only after the AUTH was settled.
        #expect(try h.toBackend() == "NOOP\r\n")
    }

    @Test("an idle client is disconnected after the command timeout")
    func idle() throws {
        let h = try HandlerHarness()
        try h.open()
        h.loop.advanceTime(by: .seconds(299))
        #expect(try h.toClient() == "")
        h.loop.advanceTime(by: .seconds(1))
        #expect(try h.toClient() == "421 4.4.2 mx.example.org Error: timeout exceeded\r\n")
        #expect(!h.client.isActive)
    }

    @Test("a backend that does not greet in time: 421 4.3.0")
    func slowGreeting() throws {
        let h = try HandlerHarness()
        try h.open()
        try h.clientSays("MAIL FROM:<a@example.org>\r\n")
        #expect(h.connector.connects == 1)
        h.loop.advanceTime(by: .seconds(300))
        #expect(try h.toClient().hasPrefix("421 4.3.0 mx.example.org"))
        #expect(!h.client.isActive)
    }

    @Test("an unreachable backend: 421 4.3.0")
    func unreachable() throws {
        let h = try HandlerHarness()
        h.connector.fail = true
        try h.open()
        try h.clientSays("MAIL FROM:<a@example.org>\r\n")
        #expect(try h.toClient().hasPrefix("421 4.3.0 mx.example.org Service temporarily unavailable"))
    }

    @Test("per-client connection limit")
    func perClientLimit() throws {
        let registry = ConnectionRegistry(maxTotal: 10, maxPerClient: 1)
        let first = try HandlerHarness(registry: registry)
        try first.connect()
        let second = try HandlerHarness(registry: registry)
        try second.connect()
        #expect(try second.toClient().hasPrefix("421 4.7.0 mx.example.org Error: too many connections from your address"))
        #expect(second.connector.connects == 0)
        let other = try HandlerHarness(address: "203.0.113.10", registry: registry)
        try other.connect()
        #expect(try other.toClient() == "220 mx.example.org ESMTP\r\n")
        #expect(registry.openConnections == 2)
        try first.client.close().wait()
        #expect(registry.openConnections == 1)
    }

    @Test("the backend's banner and product never reach the client")
    func banner() throws {
        let h = try HandlerHarness()
        try h.open()
        try h.clientSays("MAIL FROM:<a@example.org>\r\n")
        try h.backendSays("220 backend.internal ESMTP Postfix (Debian/GNU)\r\n")
        #expect(try h.toBackend() == "EHLO client\r\n")
        try h.backendSays("250-backend.internal\r\n250 PIPELINING\r\n")
        #expect(try h.toBackend() == "MAIL FROM:<a@example.org>\r\n")
        try h.backendSays("250 2.1.0 Ok\r\n")
        let told = try h.toClient()
        #expect(told == "250 2.1.0 Ok\r\n")
        #expect(!told.contains("Postfix") && !told.contains("backend"))
    }

    @Test("after a refusal in the tarpit, pipelined commands are answered at once, and the refused AUTH never opened the backend")
    func pipelinedAfterRefusal() throws {
        let h = try HandlerHarness()
        for i in 1...3 {
            _ = h.guardEngine.decide(
                AuthAttempt(time: h.clock.now(), client: IPAddress("203.0.113.9")!, username: "alice", outcome: .failure,
                    credential: CredentialEvidence(passwordHash: UInt16(i))))
        }
        try h.open()
        try h.clientSays("AUTH PLAIN \(Base64.encode(Array("\0alice\0pw9".utf8)))\r\nNOOP\r\n")
        h.loop.advanceTime(by: .seconds(3))  // tarpit 2 s after 3 failures, + 2 s for a refusal
        #expect(try h.toClient() == "")
        h.loop.advanceTime(by: .seconds(1))
        #expect(try h.toClient() == "535 5.7.8 Authentication credentials invalid\r\n250 2.0.0 Ok\r\n")
        #expect(h.connector.connects == 0)
    }
}
