// The proxy on real loopback sockets: a small scripted backend, many clients at once.

import GuardCore
import Logging
import NIOCore
import NIOPosix
import SMTPWire
import Synchronization
import Testing

@testable import SMTPProxy

/// A backend that greets, answers EHLO with AUTH PLAIN, refuses every password, and says bye.
final class RefusingBackendHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var buffer = ByteBuffer()
    private var framer = SMTPLineFramer()

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: "220 backend ESMTP\r\n")), promise: nil)
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        self.buffer.writeBuffer(&incoming)
        while case .line(let line)? = self.framer.next(from: &self.buffer, limit: 20_000) {
            let text = String(buffer: line.content).uppercased()
            let reply: String
            if text.hasPrefix("EHLO") { reply = "250-backend\r\n250 AUTH PLAIN LOGIN\r\n" }
            else if text.hasPrefix("AUTH") { reply = "535 5.7.8 Error: authentication failed\r\n" }
            else if text == "QUIT" { reply = "221 2.0.0 Bye\r\n" }
            else { reply = "250 2.0.0 Ok\r\n" }
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: reply)), promise: nil)
        }
    }
}

/// A client that logs in with a wrong password and reports the reply it got.
final class GuessingClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var buffer = ByteBuffer()
    private var framer = SMTPLineFramer()
    private let done: EventLoopPromise<String>

    init(done: EventLoopPromise<String>) { self.done = done }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        self.buffer.writeBuffer(&incoming)
        while case .line(let line)? = self.framer.next(from: &self.buffer, limit: 20_000) {
            let text = String(buffer: line.content)
            if text.hasPrefix("220 ") {
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: "EHLO bot\r\n")), promise: nil)
            } else if text.hasPrefix("250 ") {
                let payload = Base64.encode(Array("\0admin\0letmein".utf8))
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: "AUTH PLAIN \(payload)\r\n")), promise: nil)
            } else if !text.hasPrefix("250-") {
                self.done.succeed(text)
                context.close(promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) { self.done.succeed("closed") }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { self.done.succeed("error: \(error)"); context.close(promise: nil) }
}

func threadCount() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
    for line in status.split(separator: "\n") where line.hasPrefix("Threads:") {
        return Int(line.split(separator: "\t").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "") ?? -1
    }
    return -1
}

/// Runs a scripted backend and the proxy in front of it on loopback, calls `body` with the
/// proxy's port, then stops both.
func withProxy(
    group: MultiThreadedEventLoopGroup, proxy configure: (inout ProxyConfiguration) -> Void, policy: GuardPolicy,
    registry: ConnectionRegistry, _ body: (Int) async throws -> Void
) async throws {
    try await withProxyListeners(group: group, proxy: configure, policy: policy, registry: registry) { ports in
        try await body(ports[0])
    }
}

/// The general form: every bound port (plain listeners, then implicit TLS ones), the guard's
/// certificate and backend TLS when wanted, a backend of the test's choosing, an event sink.
func withProxyListeners(
    group: MultiThreadedEventLoopGroup, proxy configure: (inout ProxyConfiguration) -> Void, policy: GuardPolicy,
    registry: ConnectionRegistry, tls: TLSContextStore? = nil, backendTLS: BackendTLS? = nil,
    events: any EventSink = DiscardingEventSink(),
    backendHandler: @escaping @Sendable (any Channel) throws -> Void = { try $0.pipeline.syncOperations.addHandler(RefusingBackendHandler()) },
    _ body: ([Int]) async throws -> Void
) async throws {
    let backend = try await ServerBootstrap(group: group)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try backendHandler(channel) }
        }
        .bind(host: "127.0.0.1", port: 0).get()
    var proxy = ProxyConfiguration()
    proxy.requireTLS = false
    proxy.listen = [HostPort(host: "127.0.0.1", port: 0)]
    proxy.backend = HostPort(host: "127.0.0.1", port: backend.localAddress!.port!)
    proxy.hostname = "mx.test"
    configure(&proxy)
    let context = ProxyContext(
        configuration: proxy, session: SessionConfiguration(proxy, hasher: .random()), guardEngine: Guard(policy: policy),
        events: events, registry: registry, logger: Logger(label: "test"),
        connector: TCPBackendConnector(implicitTLS: proxy.backendTLS == .tls ? backendTLS : nil), tls: tls, backendTLS: backendTLS)
    let bound = Mutex<[Int]?>(nil)
    let service = SMTPProxyService(context: context, group: group, drainTimeout: .seconds(1)) { addresses in
        bound.withLock { $0 = addresses.compactMap(\.port) }
    }
    let failure = FailureNote()
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask {
            do { try await service.run() } catch {
                failure.text.withLock { $0 = "\(error)" }
                throw error
            }
        }
        var ports: [Int]?
        for _ in 0..<500 where ports == nil && failure.text.withLock({ $0 == nil }) {
            try await Task.sleep(for: .milliseconds(10))
            ports = bound.withLock { $0 }
        }
        if ports == nil, let reason = failure.text.withLock({ $0 }) { throw ProxyDidNotStart(reason: reason) }
        try await body(try #require(ports, "no listener within 5 s"))
        tasks.cancelAll()
    }
    try await backend.close()
}

struct ProxyDidNotStart: Error, CustomStringConvertible {
    var reason: String
    var description: String { "the proxy did not start: \(self.reason)" }
}

/// Why a service in a test stopped, for the test's message.
final class FailureNote: Sendable {
    let text = Mutex<String?>(nil)
}

/// A port free for IPv4 and IPv6 at once (a dual-stack socket on `::` can have it), below
/// Linux's ephemeral range so that no other test's `:0` is given it meanwhile.
func freeDualStackPort(group: any EventLoopGroup) async throws -> Int {
    for _ in 0..<50 {
        let port = Int.random(in: 20_000..<32_000)
        guard let probe = try? await ServerBootstrap(group: group).bind(host: "::", port: port).get() else { continue }
        try await probe.close()
        return port
    }
    throw ChannelError.unknownLocalAddress
}

@Suite("Proxy on loopback")
struct LoopbackTests {
    @Test("0.0.0.0:P beside [::]:P: both listeners start (the IPv6 one is IPv6-only) and each greets its family", .timeLimit(.minutes(1)))
    func dualStackListeners() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // The port is free when chosen; another process may take it before the proxy binds: then
        // another port (the reason is kept, and a failure that is not "in use" ends the test).
        for attempt in 1...5 {
            let port = try await freeDualStackPort(group: group)
            let listeners = [HostPort(host: "0.0.0.0", port: port), HostPort(host: "::", port: port)]
            do {
                try await withProxyListeners(group: group, proxy: { $0.listen = listeners }, policy: GuardPolicy(), registry: ConnectionRegistry(maxTotal: 10, maxPerClient: 10)) { ports in
                    #expect(ports == [port, port])
                    for host in ["127.0.0.1", "::1"] {
                        var client = try await TestClient.connect(port: port, group: group, host: host)
                        await client.expectReply(prefix: "220 mx.test")
                        try await client.channel.close()
                    }
                }
                break
            } catch let error as ProxyDidNotStart where attempt < 5 && error.reason.contains("0.0.0.0:\(port): ") && error.reason.contains("Address already in use") {
                continue
            }
        }
        try await group.shutdownGracefully()
    }

    @Test("a thousand tarpitted connections at once cost no threads, and each gets its reply", .timeLimit(.minutes(1)))
    func manyTarpitted() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var policy = GuardPolicy()
        policy.tarpit.afterFailures = 0  // every attempt waits
        policy.tarpit.initial = .seconds(6)  // longer than it takes to open all thousand
        policy.limits.attemptsPerIP = 100_000
        policy.limits.pairFailures = 100_000
        policy.limits.ipFailuresShort = 100_000
        policy.limits.ipFailuresLong = 100_000
        policy.limits.prefixFailuresShort = 100_000
        policy.limits.prefixFailuresLong = 100_000
        policy.limits.usernameFailuresShort = 100_000
        policy.limits.usernameFailuresLong = 100_000
        policy.limits.ipsPerUsername = 100_000
        let registry = ConnectionRegistry(maxTotal: 5000, maxPerClient: 5000)
        let limits: (inout ProxyConfiguration) -> Void = { $0.maxConnections = 5000; $0.maxConnectionsPerIP = 5000 }
        try await withProxy(group: group, proxy: limits, policy: policy, registry: registry) { proxyPort in
            let threadsBefore = threadCount()
            // Clients come from many loopback addresses: 127.0.0.0/8 stands in for a botnet.
            var replies: [EventLoopFuture<String>] = []
            for i in 0..<1000 {
                let promise = group.next().makePromise(of: String.self)
                _ = try await ClientBootstrap(group: group)
                    .bind(to: try SocketAddress(ipAddress: "127.1.\(i / 250).\(i % 250 + 1)", port: 0))
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(GuessingClientHandler(done: promise)) }
                    }
                    .connect(host: "127.0.0.1", port: proxyPort).get()
                replies.append(promise.futureResult)
            }
            // All are now held in the tarpit together.
            try await Task.sleep(for: .milliseconds(500))
            let open = registry.openConnections
            let threadsDuring = threadCount()
            var results: [String: Int] = [:]
            for reply in replies { results[try await reply.get(), default: 0] += 1 }
            #expect(open > 900, "connections held open in the tarpit: \(open)")
            #expect(threadsDuring <= threadsBefore + 2, "threads before \(threadsBefore), during \(threadsDuring)")
            #expect(results["535 5.7.8 Authentication credentials invalid"] == 1000, "\(results)")
        }
        try await group.shutdownGracefully()
    }

    @Test("a client that sends without reading its replies is cut off, not buffered forever", .timeLimit(.minutes(1)))
    func clientThatNeverReads() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let registry = ConnectionRegistry(maxTotal: 10, maxPerClient: 10)
        let timeouts: (inout ProxyConfiguration) -> Void = { $0.replyTimeout = .seconds(3); $0.commandTimeout = .seconds(1) }
        try await withProxy(group: group, proxy: timeouts, policy: GuardPolicy(), registry: registry) { port in
            // The client never reads: its receive buffer fills with replies, then the guard's.
            let client = try await ClientBootstrap(group: group)
                .channelOption(.autoRead, value: false)
                .channelOption(.socketOption(.so_rcvbuf), value: 4096)
                .connect(host: "127.0.0.1", port: port).get()
            // After the greeting, commands that are not junk (so the junk-command limit does
            // not end it first) and that go to the backend (MAIL opens the link).
            try await Task.sleep(for: .milliseconds(300))
            let commands = ByteBuffer(string: "EHLO x\r\nMAIL FROM:<a@example.org>\r\n" + String(repeating: "RCPT TO:<a@example.org>\r\n", count: 100_000))
            client.writeAndFlush(commands, promise: nil)
            // A client that never reads cannot see the close itself: watch the guard's side.
            let began = ContinuousClock.now
            try await Task.sleep(for: .milliseconds(200))
            #expect(registry.openConnections == 1)
            for _ in 0..<600 where registry.openConnections > 0 { try await Task.sleep(for: .milliseconds(50)) }
            let took = ContinuousClock.now - began
            #expect(registry.openConnections == 0, "still open after \(took)")
            try? await client.close()
        }
        try await group.shutdownGracefully()
    }
}
