// smtp-load: the project's SMTP load generator. Runs complete SMTP sessions against a
// server (closed loop: a fixed number in flight) and reports sessions per second and the
// session latency percentiles, from TCP connect to the 221 of QUIT.
//
//   smtp-load --target 127.0.0.1:2525 --sessions 5000 --concurrency 20 [--json]
//   smtp-load --target 127.0.0.1:2525 --auth-user alice --auth-password-file pw.txt --auth-only
//   smtp-load --target 127.0.0.1:2525 --starttls --tls-only     (TLS sessions per second)
//   smtp-load --target 127.0.0.1:2525 --hold 10000 --hold-sources 127.4 --sessions 100
//             (10,000 idle connections held open while 100 measured sessions run)
//
// A session: greeting, EHLO, [STARTTLS, handshake, EHLO], [AUTH PLAIN], MAIL, RCPT, DATA, a
// short message, QUIT (or QUIT right after AUTH with --auth-only, after the second EHLO with
// --tls-only). TLS certificates are not verified: this measures cost, not trust. Any reply other than the expected one counts as an
// error. Sources can be spread over many loopback addresses (--sources 127.3) so that per-
// address limits of the server under test do not apply. Loopback only, bounded in count
// and time (--time-limit).

import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

struct LoadOptions: Sendable {
    var host: String
    var port: Int
    var sessions: Int
    var concurrency: Int
    var authUser: String?
    var authPassword: String?
    var authOnly: Bool
    var sources: String?
    var timeLimit: Duration
    var startTLS: Bool
    var implicitTLS: Bool
    var tlsOnly: Bool
    var tls: NIOSSLContext?
}

/// What one finished session reports.
struct SessionResult: Sendable {
    var ok: Bool
    var latency: Duration
    var failure: String?
}

/// Drives one session: waits for each expected reply, sends the next command.
final class LoadSessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var steps: [(send: String?, expect: Int)]
    private var buffer = ByteBuffer()
    private let started: ContinuousClock.Instant
    private let finished: (SessionResult) -> Void
    private var done = false
    private let tls: NIOSSLContext?

    init(options: LoadOptions, started: ContinuousClock.Instant, finished: @escaping (SessionResult) -> Void) {
        self.started = started
        self.finished = finished
        self.tls = options.tls
        var steps: [(String?, Int)] = [(nil, 220), ("EHLO load.test", 250)]
        if options.startTLS { steps += [("STARTTLS", 220), ("EHLO load.test", 250)] }
        if options.tlsOnly {
            self.steps = steps + [("QUIT", 221)]
            return
        }
        if let user = options.authUser, let password = options.authPassword {
            let payload = Data([0] + Array(user.utf8) + [0] + Array(password.utf8)).base64EncodedString()
            steps.append(("AUTH PLAIN \(payload)", 235))
        }
        if !options.authOnly {
            steps += [
                ("MAIL FROM:<load@bench.test>", 250), ("RCPT TO:<sink@bench.test>", 250), ("DATA", 354),
                ("Subject: smtp-load\r\n\r\nA short message from smtp-load.\r\n.", 250),
            ]
        }
        steps.append(("QUIT", 221))
        self.steps = steps
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        self.buffer.writeBuffer(&incoming)
        // Replies end at a line whose fourth byte is a space.
        while let newline = self.buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - self.buffer.readerIndex + 1
            guard let line = self.buffer.readString(length: length) else { break }
            guard line.count >= 4 else { return self.finish(context, ok: false, failure: "short reply") }
            let separator = line[line.index(line.startIndex, offsetBy: 3)]
            if separator == "-" { continue }
            guard let code = Int(line.prefix(3)), !self.steps.isEmpty else { return self.finish(context, ok: false, failure: "bad reply") }
            let step = self.steps.removeFirst()
            guard code == step.expect else {
                return self.finish(context, ok: false, failure: "expected \(step.expect), got \(line.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            if step.send == "STARTTLS", let tls = self.tls {
                do {
                    try context.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil), position: .first)
                } catch {
                    return self.finish(context, ok: false, failure: "TLS: \(error)")
                }
            }
            if self.steps.isEmpty { return self.finish(context, ok: true, failure: nil) }
            if let command = self.steps[0].send {
                context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: command + "\r\n")), promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.finish(context, ok: false, failure: "connection closed early")
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.finish(context, ok: false, failure: "\(error)")
    }

    private func finish(_ context: ChannelHandlerContext, ok: Bool, failure: String?) {
        guard !self.done else { return }
        self.done = true
        self.finished(SessionResult(ok: ok, latency: ContinuousClock.now - self.started, failure: failure))
        context.close(promise: nil)
    }
}

/// Keeps `concurrency` sessions in flight until `sessions` have run. Lives on one event loop.
final class Coordinator {
    let options: LoadOptions
    let eventLoop: any EventLoop
    let done: EventLoopPromise<Void>
    var started = 0
    var results: [SessionResult] = []
    var sourceIndex = 0
    let deadline: ContinuousClock.Instant

    init(options: LoadOptions, eventLoop: any EventLoop) {
        self.options = options
        self.eventLoop = eventLoop
        self.done = eventLoop.makePromise()
        self.deadline = ContinuousClock.now + options.timeLimit
        self.results.reserveCapacity(options.sessions)
    }

    func start() {
        for _ in 0..<min(self.options.concurrency, self.options.sessions) { self.launch() }
    }

    private func nextSource() -> SocketAddress? {
        guard let prefix = self.options.sources else { return nil }
        let i = self.sourceIndex
        self.sourceIndex += 1
        return try? SocketAddress(ipAddress: "\(prefix).\((i / 250) % 250).\(i % 250 + 1)", port: 0)
    }

    private func launch() {
        guard self.started < self.options.sessions, ContinuousClock.now < self.deadline else {
            if self.results.count == self.started { self.done.succeed() }
            return
        }
        self.started += 1
        let began = ContinuousClock.now
        let options = self.options
        let loop = self.eventLoop
        let finished: (SessionResult) -> Void = { result in
            self.results.append(result)
            self.launch()
        }
        let bound = NIOLoopBound(finished, eventLoop: loop)
        var bootstrap = ClientBootstrap(group: loop).connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if options.implicitTLS, let tls = options.tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        LoadSessionHandler(options: options, started: began, finished: bound.value))
                }
            }
        if let source = self.nextSource() { bootstrap = bootstrap.bind(to: source) }
        bootstrap.connect(host: options.host, port: options.port).assumeIsolated().whenFailure { error in
            self.results.append(SessionResult(ok: false, latency: ContinuousClock.now - began, failure: "connect: \(error)"))
            self.launch()
        }
    }
}

@main
struct SMTPLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smtp-load", abstract: "Run complete SMTP sessions against a server and report sessions/s and latency.")

    @Option(help: "The server, HOST:PORT (loopback only).") var target: String
    @Option(help: "Sessions to run in all.") var sessions = 5000
    @Option(help: "Sessions in flight at once.") var concurrency = 20
    @Option(help: "Log in with AUTH PLAIN as this user.") var authUser: String?
    @Option(help: "Read the AUTH password from this file (first line).") var authPasswordFile: String?
    @Flag(help: "End each session right after AUTH (AUTH sessions per second).") var authOnly = false
    @Option(help: "Spread source addresses over PREFIX.x.y (e.g. 127.3), one per session.") var sources: String?
    @Option(help: "Stop starting sessions after this many seconds.") var timeLimit = 300
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Flag(help: "STARTTLS after the first EHLO, then EHLO again.") var starttls = false
    @Flag(help: "TLS from the first byte (a port 465 style server).") var implicitTLS = false
    @Flag(help: "End each session after the EHLO inside TLS (TLS sessions per second).") var tlsOnly = false
    @Option(help: "Before the measured sessions, open this many connections, say EHLO and hold them idle.") var hold = 0
    @Option(help: "Source addresses for held connections: PREFIX.x.y (e.g. 127.4).") var holdSources = "127.4"

    func run() async throws {
        let parts = self.target.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), parts[0].hasPrefix("127.") || parts[0] == "localhost" else {
            throw ValidationError("--target must be a loopback HOST:PORT, e.g. 127.0.0.1:2525")
        }
        if let sources = self.sources, !sources.hasPrefix("127.") { throw ValidationError("--sources must be inside 127.0.0.0/8") }
        var password: String?
        if let file = self.authPasswordFile {
            password = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").first.map(String.init) ?? ""
        }
        let options = LoadOptions(
            host: String(parts[0]), port: port, sessions: max(1, self.sessions), concurrency: max(1, self.concurrency),
            authUser: self.authUser, authPassword: password, authOnly: self.authOnly, sources: self.sources,
            timeLimit: .seconds(self.timeLimit), startTLS: self.starttls, implicitTLS: self.implicitTLS,
            tlsOnly: self.tlsOnly && (self.starttls || self.implicitTLS), tls: try Self.tlsContext())
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        var held: [any Channel] = []
        if self.hold > 0 {
            guard self.holdSources.hasPrefix("127.") else { throw ValidationError("--hold-sources must be inside 127.0.0.0/8") }
            held = try await Self.holdIdle(self.hold, sources: self.holdSources, host: options.host, port: port, group: group)
            FileHandle.standardError.write(Data("smtp-load: holding \(held.count) idle connections\n".utf8))
            if let file = ProcessInfo.processInfo.environment["SMTP_LOAD_HELD_FILE"] {
                try? "\(held.count)\n".write(toFile: file, atomically: true, encoding: .utf8)
            }
            // A moment for the server to settle (and for a memory reading to be taken).
            try await Task.sleep(for: .seconds(Int(ProcessInfo.processInfo.environment["SMTP_LOAD_HOLD_PAUSE"] ?? "2") ?? 2))
        }
        let began = ContinuousClock.now
        let summary = try await loop.submit {
            let coordinator = Coordinator(options: options, eventLoop: loop)
            coordinator.start()
            return coordinator.done.futureResult.assumeIsolated().map { _ in
                Self.summarize(coordinator.results, elapsed: ContinuousClock.now - began)
            }.nonisolated()
        }.flatMap { $0 }.get()
        let stillHeld = held.filter(\.isActive).count
        for channel in held { channel.close(promise: nil) }
        try await group.shutdownGracefully()
        if self.hold > 0 { FileHandle.standardError.write(Data("smtp-load: \(stillHeld) of \(held.count) held connections still open at the end\n".utf8)) }
        print(self.json ? summary.json : summary.text)
        if summary.errors > 0 && summary.ok == 0 { throw ExitCode(1) }
    }

    static func tlsContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return try NIOSSLContext(configuration: configuration)
    }

    /// Opens `count` connections from PREFIX.x.y, each greeted and past EHLO, then idle.
    static func holdIdle(_ count: Int, sources: String, host: String, port: Int, group: any EventLoopGroup) async throws -> [any Channel] {
        var channels: [any Channel] = []
        channels.reserveCapacity(count)
        for i in 0..<count {
            let source = try SocketAddress(ipAddress: "\(sources).\((i / 250) % 250).\(i % 250 + 1)", port: 0)
            let channel = try await ClientBootstrap(group: group).connectTimeout(.seconds(10)).bind(to: source)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(IdleClientHandler()) }
                }
                .connect(host: host, port: port).get()
            channels.append(channel)
        }
        return channels
    }

    struct Summary: Sendable {
        var ok: Int
        var errors: Int
        var elapsed: Double
        var p50: Double
        var p90: Double
        var p99: Double
        var max: Double
        var firstError: String?

        var rate: Double { Double(self.ok) / self.elapsed }
        var json: String {
            let error = self.firstError.map { ",\"first_error\":\"\($0.replacingOccurrences(of: "\"", with: "'"))\"" } ?? ""
            return String(
                format: "{\"sessions\":%d,\"errors\":%d,\"seconds\":%.3f,\"sessions_per_second\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f%@}",
                self.ok, self.errors, self.elapsed, self.rate, self.p50, self.p90, self.p99, self.max, error)
        }
        var text: String {
            String(
                format: "%d sessions (%d errors) in %.2f s: %.0f sessions/s; latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms%@",
                self.ok, self.errors, self.elapsed, self.rate, self.p50, self.p90, self.p99, self.max,
                self.firstError.map { "\nfirst error: \($0)" } ?? "")
        }
    }

    static func summarize(_ results: [SessionResult], elapsed: Duration) -> Summary {
        let latencies = results.filter(\.ok).map { $0.latency.secondsDouble * 1000 }.sorted()
        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return 0 }
            return latencies[min(latencies.count - 1, Int((p * Double(latencies.count)).rounded(.up)) - 1)]
        }
        return Summary(
            ok: latencies.count, errors: results.count - latencies.count, elapsed: elapsed.secondsDouble,
            p50: percentile(0.5), p90: percentile(0.9), p99: percentile(0.99), max: latencies.last ?? 0,
            firstError: results.first { !$0.ok }?.failure)
    }
}

extension Duration {
    var secondsDouble: Double { Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18 }
}

/// A held connection: says EHLO after the greeting, then nothing.
final class IdleClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var greeted = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.greeted else { return }
        self.greeted = true
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: "EHLO idle.test\r\n")), promise: nil)
    }
}
