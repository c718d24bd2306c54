// policy-load: load for the policy servers. Each connection keeps one request in flight
// (as Dovecot's HTTP client and Postfix's smtpd do), requests back to back over keep-alive
// connections; it reports requests per second and latency percentiles.
//
//   policy-load dovecot --target 127.0.0.1:8025 --api-key KEY [--path /health] [--json]
//       allow / report pairs for many loopback clients and users (POST /?command=…), or the
//       same bodies to --path (the endpoint that does no work: the baseline)
//   policy-load postfix --target 127.0.0.1:8026 [--json]
//       RCPT requests of authenticated users and CONNECT requests of many clients
//   policy-load serve-trivial --postfix 127.0.0.1:8027
//       the Postfix policy server of the guard with an answer that does no work (DUNNO)
//
// Loopback only; bounded in requests (--requests) and time (--time-limit).

import ArgumentParser
import Foundation
import GuardCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PolicyServers
import ServiceLifecycle
import Synchronization

@main
struct PolicyLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy-load", abstract: "Load for the Dovecot and Postfix policy servers.",
        subcommands: [DovecotLoad.self, PostfixLoad.self, ServeTrivial.self, Micro.self])
}

struct CommonOptions: ParsableArguments {
    @Option(help: "The server, HOST:PORT (loopback).") var target: String
    @Option(help: "Requests to send in all.") var requests = 200_000
    @Option(help: "Connections, each with one request in flight.") var connections = 8
    @Option(help: "Stop after this many seconds whatever the count.") var timeLimit = 60.0
    @Option(help: "Requests sent first and not measured.") var warmup = 5_000
    @Flag(help: "Print one JSON object.") var json = false

    func hostPort() throws -> HostPort {
        guard let target = HostPort(self.target), target.host.hasPrefix("127.") || target.host == "::1" else {
            throw ValidationError("--target must be a loopback HOST:PORT")
        }
        return target
    }
}

/// Latencies of every measured request, and the errors.
final class Tally: Sendable {
    private let state = Mutex<(latencies: [Int64], errors: Int, sent: Int, measuredFrom: ContinuousClock.Instant?)>(([], 0, 0, nil))
    let total: Int
    let warmup: Int
    let deadline: ContinuousClock.Instant

    init(total: Int, warmup: Int, timeLimit: Double) {
        self.total = total
        self.warmup = warmup
        self.deadline = .now + .milliseconds(Int(timeLimit * 1000))
    }

    /// Claims the next request; false when enough have been sent or time is up.
    func claim() -> Bool {
        guard ContinuousClock.now < self.deadline else { return false }
        return self.state.withLock { state in
            guard state.sent < self.total + self.warmup else { return false }
            if state.sent == self.warmup { state.measuredFrom = .now }
            state.sent += 1
            return true
        }
    }

    func done(_ latency: Duration, ok: Bool, index: Int) {
        self.state.withLock { state in
            if !ok { state.errors += 1 }
            if index >= self.warmup { state.latencies.append(latency.components.seconds * 1_000_000_000 + latency.components.attoseconds / 1_000_000_000) }
        }
    }

    /// Seconds from the first measured request to now.
    var measuredSeconds: Double {
        let elapsed = ContinuousClock.now - (self.state.withLock { $0.measuredFrom } ?? .now)
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    func report(kind: String, json: Bool) {
        let seconds = self.measuredSeconds
        let (latencies, errors) = self.state.withLock { ($0.latencies.sorted(), $0.errors) }
        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return 0 }
            return Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) / 1000
        }
        let rate = Double(latencies.count) / seconds
        if json {
            print(#"{"kind":"\#(kind)","requests":\#(latencies.count),"errors":\#(errors),"seconds":\#(String(format: "%.3f", seconds)),"per_second":\#(Int(rate)),"p50_us":\#(String(format: "%.1f", percentile(0.5))),"p99_us":\#(String(format: "%.1f", percentile(0.99)))}"#)
        } else {
            print("\(kind): \(latencies.count) requests in \(String(format: "%.2f", seconds)) s = \(Int(rate)) /s, p50 \(String(format: "%.1f", percentile(0.5))) µs, p99 \(String(format: "%.1f", percentile(0.99))) µs, \(errors) errors")
        }
    }
}

/// Counts requests as they are claimed, so the first `warmup` are not measured.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { self.value.add(1, ordering: .relaxed).oldValue }
}

/// What each load connection keeps: which request is in flight, since when, and whether
/// the connection is done (it reports that once; closing calls back into it). Used on its
/// channel's event loop only.
final class LoadConnection {
    let tally: Tally
    let counter: Counter
    let finished: () -> Void
    var sentAt = ContinuousClock.now
    var index = 0
    var ended = false

    init(tally: Tally, counter: Counter, finished: @escaping () -> Void) {
        self.tally = tally
        self.counter = counter
        self.finished = finished
    }

    /// Claims the next request and starts its clock; false when the run is over.
    func begin() -> Bool {
        guard self.tally.claim() else { return false }
        self.index = self.counter.next()
        self.sentAt = .now
        return true
    }

    /// The answer to the request in flight came.
    func answered(ok: Bool) { self.tally.done(.now - self.sentAt, ok: ok, index: self.index) }

    func end(_ context: ChannelHandlerContext?) {
        guard !self.ended else { return }
        self.ended = true
        context?.close(promise: nil)
        self.finished()
    }
}

/// Opens `connections` connections to `target` on one event-loop thread, each set up by
/// `configure` with the function that tells it is finished, and waits for them all.
func runConnections(
    _ connections: Int, target: HostPort,
    configure: @escaping @Sendable (_ channel: any Channel, _ number: Int, _ finished: @escaping @Sendable () -> Void) throws -> Void
) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    await withTaskGroup(of: Void.self) { tasks in
        for number in 0..<connections {
            tasks.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    ClientBootstrap(group: group)
                        .channelOption(.socketOption(.tcp_nodelay), value: 1)
                        .channelInitializer { channel in
                            channel.eventLoop.makeCompletedFuture { try configure(channel, number) { continuation.resume() } }
                        }
                        .connect(host: target.host, port: target.port)
                        .whenFailure { error in
                            print("connect: \(error)")
                            continuation.resume()
                        }
                }
            }
        }
    }
    try await group.shutdownGracefully()
}

// MARK: - Dovecot

struct DovecotLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dovecot", abstract: "allow / report requests over HTTP keep-alive.")
    @OptionGroup var common: CommonOptions
    @Option(help: "The API key (sent as X-API-Key).") var apiKey: String
    @Option(help: "Send every body to this path instead (e.g. /health, the baseline).") var path: String?

    func run() async throws {
        let target = try self.common.hostPort()
        // A pool of bodies: 65,536 clients, 2,000 users, a pwhash each; allow then report.
        var bodies: [(String, String)] = []
        var generator = SystemRandomNumberGenerator()
        for i in 0..<8192 {
            let client = "127.\(1 + (i >> 8) % 200).\(i & 0xFF).\(Int.random(in: 1...250, using: &generator))"
            let body = #"{"device_id":"","login":"user\#(Int.random(in: 0..<2000, using: &generator))","protocol":"smtp","pwhash":"\#(String(format: "%08x", UInt32.random(in: 0...UInt32.max, using: &generator)))","remote":"\#(client)","session_id":"","tls":true"#
            let path = self.path ?? "/?command=allow"
            bodies.append((path, body + "}"))
            bodies.append((self.path ?? "/?command=report", body + #","success":\#(i % 5 == 0),"policy_reject":false}"#))
        }
        let tally = Tally(total: self.common.requests, warmup: self.common.warmup, timeLimit: self.common.timeLimit)
        let counter = Counter()
        let (pool, apiKey, host) = (bodies, self.apiKey, target.host)
        try await runConnections(self.common.connections, target: target) { channel, number, finished in
            try channel.pipeline.syncOperations.addHTTPClientHandlers()
            let connection = LoadConnection(tally: tally, counter: counter, finished: finished)
            try channel.pipeline.syncOperations.addHandler(HTTPLoadHandler(connection, bodies: pool, offset: number * 977, host: host, apiKey: apiKey))
        }
        tally.report(kind: self.path == nil ? "dovecot decisions" : "dovecot \(self.path!)", json: self.common.json)
    }
}

final class HTTPLoadHandler: ChannelInboundHandler, @unchecked Sendable {  // one event loop
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let connection: LoadConnection
    let bodies: [(String, String)]
    var next: Int
    let host: String
    let apiKey: String
    var status: HTTPResponseStatus = .ok

    init(_ connection: LoadConnection, bodies: [(String, String)], offset: Int, host: String, apiKey: String) {
        self.connection = connection
        self.bodies = bodies
        self.next = offset
        self.host = host
        self.apiKey = apiKey
    }

    func channelActive(context: ChannelHandlerContext) { self.send(context: context) }

    func send(context: ChannelHandlerContext) {
        guard self.connection.begin() else { return self.connection.end(context) }
        let (path, body) = self.bodies[self.next % self.bodies.count]
        self.next += 1
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: self.host)
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "X-API-Key", value: self.apiKey)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        context.write(self.wrapOutboundOut(.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers))), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head): self.status = head.status
        case .body: break
        case .end:
            self.connection.answered(ok: self.status == .ok)
            self.send(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) { self.connection.end(nil) }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        print("error: \(error)")
        self.connection.end(context)
    }
}

// MARK: - Postfix

struct PostfixLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "postfix", abstract: "Policy delegation requests over kept connections.")
    @OptionGroup var common: CommonOptions

    func run() async throws {
        let target = try self.common.hostPort()
        // RCPT of 2,000 authenticated users from many clients, and CONNECTs, 1:1.
        var requests: [String] = []
        var generator = SystemRandomNumberGenerator()
        for i in 0..<8192 {
            let client = "127.\(1 + (i >> 8) % 200).\(i & 0xFF).\(Int.random(in: 1...250, using: &generator))"
            if i % 2 == 0 {
                requests.append("request=smtpd_access_policy\nprotocol_state=CONNECT\nprotocol_name=ESMTP\nclient_address=\(client)\nclient_name=unknown\nclient_port=\(40000 + i)\nserver_address=127.0.0.1\nserver_port=587\n\n")
            } else {
                requests.append(
                    "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=\(client)\nclient_name=unknown\nhelo_name=client.test\nsender=u@example.org\nrecipient=r\(i)@example.net\nrecipient_count=0\nqueue_id=\ninstance=\(String(i, radix: 16)).\(Int.random(in: 0...99999, using: &generator))\nsize=0\nsasl_method=PLAIN\nsasl_username=user\(Int.random(in: 0..<2000, using: &generator))\nserver_address=127.0.0.1\nserver_port=587\n\n")
            }
        }
        let tally = Tally(total: self.common.requests, warmup: self.common.warmup, timeLimit: self.common.timeLimit)
        let counter = Counter()
        let pool = requests
        try await runConnections(self.common.connections, target: target) { channel, number, finished in
            let connection = LoadConnection(tally: tally, counter: counter, finished: finished)
            try channel.pipeline.syncOperations.addHandler(LineLoadHandler(connection, requests: pool, offset: number * 977))
        }
        tally.report(kind: "postfix", json: self.common.json)
    }
}

final class LineLoadHandler: ChannelInboundHandler, @unchecked Sendable {  // one event loop
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let connection: LoadConnection
    let requests: [String]
    var next: Int
    var buffer = ByteBuffer()

    init(_ connection: LoadConnection, requests: [String], offset: Int) {
        self.connection = connection
        self.requests = requests
        self.next = offset
    }

    func channelActive(context: ChannelHandlerContext) { self.send(context: context) }

    func send(context: ChannelHandlerContext) {
        guard self.connection.begin() else { return self.connection.end(context) }
        let request = self.requests[self.next % self.requests.count]
        self.next += 1
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        self.buffer.writeBuffer(&incoming)
        let view = self.buffer.readableBytesView
        guard view.count >= 2, view[view.endIndex - 1] == 0x0A, view[view.endIndex - 2] == 0x0A else { return }
        let ok = view.starts(with: Array("action=".utf8))
        self.buffer.clear()
        self.connection.answered(ok: ok)
        self.send(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) { self.connection.end(nil) }
}

// MARK: - The trivial Postfix server

struct ServeTrivial: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve-trivial", abstract: "The guard's Postfix policy server answering DUNNO without work, until SIGINT or SIGTERM.")
    @Option(help: "Listen on HOST:PORT.") var postfix: String
    @Option(help: "Event-loop threads (as the guard: one per core).") var threads = System.coreCount

    func run() async throws {
        var configuration = PostfixPolicyConfiguration()
        configuration.listen = [self.postfix]
        let group = MultiThreadedEventLoopGroup(numberOfThreads: self.threads)
        let logger = Logger(label: "policy-load")
        let service = try PostfixPolicyService(configuration: configuration, answer: { _ in "DUNNO" }, group: group, logger: logger)
        let serviceGroup = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await serviceGroup.run()
        try await group.shutdownGracefully()
    }
}

// MARK: - In-process costs

struct Micro: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "micro", abstract: "Time the parts of a Dovecot decision in-process (no sockets).")
    @Option var count = 200_000

    func run() async throws {
        var bodies: [[UInt8]] = []
        var reports: [[UInt8]] = []
        for i in 0..<8192 {
            let client = "127.\(1 + (i >> 8) % 200).\(i & 0xFF).\(i % 250 + 1)"
            let body = #"{"device_id":"","login":"user\#(i % 2000)","protocol":"smtp","pwhash":"\#(String(format: "%08x", UInt32(truncatingIfNeeded: i &* 2654435761)))","remote":"\#(client)","session_id":"","tls":true"#
            bodies.append(Array((body + "}").utf8))
            reports.append(Array((body + #","success":false,"policy_reject":false}"#).utf8))
        }
        func time(_ name: String, _ body: () -> Void) {
            let start = ContinuousClock.now
            body()
            let elapsed = ContinuousClock.now - start
            let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
            print("\(name): \(String(format: "%.2f", ns / Double(self.count) / 1000)) µs each")
        }
        time("DovecotPolicyRequest.parse") { for i in 0..<self.count { _ = try? DovecotPolicyRequest.parse(bodies[i % bodies.count], report: false) } }
        var configuration = DovecotPolicyConfiguration()
        configuration.hashNonce = "bench-nonce"
        let policy = DovecotPolicy(guardEngine: Guard(policy: GuardPolicy()), events: DiscardingEventSink(), configuration: configuration)
        let parsedAllows = bodies.map { try! DovecotPolicyRequest.parse($0, report: false) }
        let parsedReports = reports.map { try! DovecotPolicyRequest.parse($0, report: true) }
        for i in 0..<8192 { _ = policy.allow(parsedAllows[i]); _ = policy.report(parsedReports[i]) }
        time("allow + report (pair), per request") {
            for i in 0..<(self.count / 2) {
                _ = policy.allow(parsedAllows[i % 8192])
                _ = policy.report(parsedReports[i % 8192])
            }
        }
        time("answer json") { for i in 0..<self.count { _ = DovecotPolicyAnswer(status: i & 1, message: "").json } }
    }
}
