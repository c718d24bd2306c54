// TLS on real loopback sockets: STARTTLS and implicit TLS towards clients, STARTTLS and
// implicit TLS towards the backend, certificate loading and reloading, and the injection
// and handshake cases that only real TLS can show.

import Foundation
import GuardCore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import SMTPWire
import Synchronization
import Testing

@testable import SMTPProxy

enum Fixtures {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static func path(_ name: String) -> String { self.folder.appendingPathComponent(name).path }

    static func settings(certificate: String = "guard.pem", key: String = "guard.key") -> TLSSettings {
        var settings = TLSSettings()
        settings.certificate = self.path(certificate)
        settings.key = self.path(key)
        return settings
    }

    /// A client context that trusts the test CA.
    static func clientContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(self.path("ca.pem")))
        return try NIOSSLContext(configuration: configuration)
    }
}

/// Collects what one test records: events and the lines a backend received.
final class Recorder: EventSink, Sendable {
    let events = Mutex<[GuardEvent]>([])
    let backendLines = Mutex<[String]>([])

    func record(_ event: GuardEvent) { self.events.withLock { $0.append(event) } }
    var attempts: [AuthAttempt] {
        self.events.withLock { events in
            events.compactMap { if case .attempt(let record) = $0 { record.attempt } else { nil } }
        }
    }
}

/// A backend like Postfix with STARTTLS: alice/secret is valid; it records every line with
/// whether it came inside TLS. `injectAfterSTARTTLS` makes it send a reply in the same write
/// as its 220 to STARTTLS (the backend-side injection).
final class TLSBackendHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var buffer = ByteBuffer()
    private var framer = SMTPLineFramer()
    private var inTLS: Bool
    private var inData = false
    private let recorder: Recorder
    private let tls: NIOSSLContext?
    private let injectAfterSTARTTLS: Bool

    init(recorder: Recorder, tls: NIOSSLContext?, implicitTLS: Bool = false, injectAfterSTARTTLS: Bool = false) {
        self.recorder = recorder
        self.tls = tls
        self.inTLS = implicitTLS
        self.injectAfterSTARTTLS = injectAfterSTARTTLS
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: "220 backend ESMTP\r\n")), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        self.buffer.writeBuffer(&incoming)
        while case .line(let line)? = self.framer.next(from: &self.buffer, limit: 20_000) {
            let text = String(buffer: line.content)
            self.recorder.backendLines.withLock { $0.append((self.inTLS ? "tls: " : "plain: ") + text) }
            if self.inData {
                if text == "." {
                    self.inData = false
                    self.write("250 2.0.0 Ok: queued\r\n", context)
                }
                continue
            }
            let upper = text.uppercased()
            if upper.hasPrefix("EHLO") {
                self.write("250-backend\r\n" + (self.tls != nil && !self.inTLS ? "250-STARTTLS\r\n" : "") + "250 AUTH PLAIN LOGIN\r\n", context)
            } else if upper == "STARTTLS", let tls = self.tls {
                self.write(self.injectAfterSTARTTLS ? "220 2.0.0 Ready to start TLS\r\n250 injected\r\n" : "220 2.0.0 Ready to start TLS\r\n", context)
                self.inTLS = true
                try? context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
            } else if upper.hasPrefix("AUTH PLAIN ") {
                let ok = Base64.decode(text.dropFirst(11)) == Array("\0alice\0secret".utf8)
                self.write(ok ? "235 2.7.0 Authentication successful\r\n" : "535 5.7.8 Error: authentication failed\r\n", context)
            } else if upper == "DATA" {
                self.inData = true
                self.write("354 End data with <CR><LF>.<CR><LF>\r\n", context)
            } else if upper == "QUIT" {
                self.write("221 2.0.0 Bye\r\n", context)
            } else {
                self.write("250 2.0.0 Ok\r\n", context)
            }
        }
    }

    private func write(_ text: String, _ context: ChannelHandlerContext) {
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
    }
}

/// Gathers what a client is told, one line at a time.
final class LineCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let continuation: AsyncStream<String>.Continuation
    private let buffer = Mutex(ByteBuffer())

    init(_ continuation: AsyncStream<String>.Continuation) { self.continuation = continuation }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        self.buffer.withLock { buffer in
            buffer.writeBuffer(&incoming)
            while let crlf = buffer.readableBytesView.firstIndex(of: 0x0A) {
                let length = crlf - buffer.readableBytesView.startIndex + 1
                var bytes = buffer.readBytes(length: length)!
                while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
                self.continuation.yield(String(decoding: bytes, as: UTF8.self))
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.continuation.yield("<closed>")
        self.continuation.finish()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.continuation.yield("<error>")
        context.close(promise: nil)
    }
}

/// A scripted SMTP client: send lines, read whole replies, start TLS when told.
struct TestClient {
    let channel: any Channel
    var lines: AsyncStream<String>.AsyncIterator

    static func connect(port: Int, group: any EventLoopGroup, implicitTLS: Bool = false, host: String = "127.0.0.1") async throws -> TestClient {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        let context = implicitTLS ? try Fixtures.clientContext() : nil
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: "mx.test.example")) }
                    try channel.pipeline.syncOperations.addHandler(LineCollector(continuation))
                }
            }
            .connect(host: host, port: port).get()
        return TestClient(channel: channel, lines: stream.makeAsyncIterator())
    }

    func send(_ text: String) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// The next whole reply ("250-a\n250 b" joined by newlines), or "<closed>".
    mutating func reply() async -> String {
        var collected: [String] = []
        while let line = await self.lines.next() {
            collected.append(line)
            if line.hasPrefix("<") { break }
            if line.count < 4 || line[line.index(line.startIndex, offsetBy: 3)] != "-" { break }
        }
        return collected.isEmpty ? "<closed>" : collected.joined(separator: "\n")
    }

    mutating func expectReply(_ expected: String, sourceLocation: SourceLocation = #_sourceLocation) async {
        let reply = await self.reply()
        #expect(reply == expected, sourceLocation: sourceLocation)
    }

    mutating func expectReply(prefix: String, sourceLocation: SourceLocation = #_sourceLocation) async {
        let reply = await self.reply()
        #expect(reply.hasPrefix(prefix), "\(reply)", sourceLocation: sourceLocation)
    }

    /// Starts TLS on this connection (after the server's 220 to STARTTLS).
    func startTLS() async throws {
        let context = try Fixtures.clientContext()
        let channel = self.channel
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(
                NIOSSLClientHandler(context: context, serverHostname: "mx.test.example"), position: .first)
        }.get()
    }

    func peerCommonName() async throws -> String {
        let certificate = try await self.channel.nioSSL_peerCertificate().get()
        return certificate.map { "\($0)" } ?? "none"
    }

    func close() async { try? await self.channel.close() }
}

func plainAuth(_ user: String, _ password: String) -> String {
    "AUTH PLAIN " + Base64.encode(Array("\0\(user)\0\(password)".utf8)) + "\r\n"
}

@Suite("TLS")
struct TLSTests {
    @Test("a missing, unreadable, broken or mismatched certificate is an error that names the file")
    func loadErrors() throws {
        func message(_ settings: TLSSettings) -> String {
            do {
                _ = try TLSContextStore(settings: settings)
                return "loaded"
            } catch {
                return "\(error)"
            }
        }
        let missing = message(Fixtures.settings(certificate: "nope.pem"))
        #expect(missing.contains("tls.certificate") && missing.contains("nope.pem") && missing.contains("no such file"), "\(missing)")
        let garbage = message(Fixtures.settings(certificate: "garbage.pem"))
        #expect(garbage.contains("garbage.pem") && garbage.contains("not a PEM certificate"), "\(garbage)")
        let badKey = message(Fixtures.settings(key: "garbage.pem"))
        #expect(badKey.contains("tls.key") && badKey.contains("garbage.pem"), "\(badKey)")
        let mismatch = message(Fixtures.settings(key: "other.key"))
        #expect(mismatch.contains("other.key") && mismatch.contains("does not belong"), "\(mismatch)")
        let directory = message(Fixtures.settings(certificate: "."))
        #expect(directory.contains("is a directory"), "\(directory)")
        #expect(message(Fixtures.settings()) == "loaded")
        let summary = try TLSContextStore(settings: Fixtures.settings()).summary
        #expect(summary.subject == "guard.test.example" || summary.subject == "mx.test.example", "\(summary.subject)")
    }

    @Test("STARTTLS: AUTH hidden and refused with 538 before TLS, offered after a new EHLO inside it", .timeLimit(.minutes(1)))
    func startTLS() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let recorder = Recorder()
        let store = try TLSContextStore(settings: Fixtures.settings())
        try await withProxyListeners(
            group: group, proxy: { $0.requireTLS = true; $0.tls = Fixtures.settings() }, policy: GuardPolicy(),
            registry: ConnectionRegistry(maxTotal: 10, maxPerClient: 10), tls: store, events: recorder,
            backendHandler: { try $0.pipeline.syncOperations.addHandler(TLSBackendHandler(recorder: recorder, tls: nil)) }
        ) { ports in
            var client = try await TestClient.connect(port: ports[0], group: group)
            await client.expectReply(prefix: "220 mx.test")
            try await client.send("EHLO client.example\r\n")
            let plainEHLO = await client.reply()
            #expect(plainEHLO.contains("STARTTLS"), "\(plainEHLO)")
            #expect(!plainEHLO.contains("AUTH"), "\(plainEHLO)")
            try await client.send(plainAuth("alice", "secret"))
            await client.expectReply("538 5.7.11 Encryption required for requested authentication mechanism")
            try await client.send("STARTTLS\r\n")
            await client.expectReply("220 2.0.0 Ready to start TLS")
            try await client.startTLS()
            try await client.send("MAIL FROM:<alice@example.org>\r\n")
            await client.expectReply("503 5.5.1 Error: send HELO/EHLO first")
            try await client.send("EHLO client.example\r\n")
            let tlsEHLO = await client.reply()
            #expect(tlsEHLO.contains("AUTH PLAIN LOGIN"), "\(tlsEHLO)")
            #expect(!tlsEHLO.contains("STARTTLS"), "\(tlsEHLO)")
            try await client.send(plainAuth("alice", "secret"))
            await client.expectReply("235 2.7.0 Authentication successful")
            try await client.send("QUIT\r\n")
            await client.expectReply(prefix: "221")
            await client.close()
        }
        let attempts = recorder.attempts
        #expect(attempts.count == 1)
        #expect(attempts.first?.tls == true)
        #expect(attempts.first?.tlsVersion == "TLSv1.3")
        // The backend never saw the refused plain-text AUTH, nor the MAIL before the new EHLO.
        let lines = recorder.backendLines.withLock { $0 }
        #expect(lines.filter { $0.contains("AUTH") }.count == 1, "\(lines)")
        #expect(!lines.contains { $0.contains("MAIL") }, "\(lines)")
        try await group.shutdownGracefully()
    }

    @Test("implicit TLS listener: TLS from the first byte, then the greeting", .timeLimit(.minutes(1)))
    func implicitTLS() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let recorder = Recorder()
        let store = try TLSContextStore(settings: Fixtures.settings())
        try await withProxyListeners(
            group: group,
            proxy: { $0.requireTLS = true; $0.tls = Fixtures.settings(); $0.listenTLS = [HostPort(host: "127.0.0.1", port: 0)] },
            policy: GuardPolicy(), registry: ConnectionRegistry(maxTotal: 10, maxPerClient: 10), tls: store, events: recorder,
            backendHandler: { try $0.pipeline.syncOperations.addHandler(TLSBackendHandler(recorder: recorder, tls: nil)) }
        ) { ports in
            #expect(ports.count == 2)
            var client = try await TestClient.connect(port: ports[1], group: group, implicitTLS: true)
            await client.expectReply(prefix: "220 mx.test")
            try await client.send("EHLO client.example\r\n")
            let ehlo = await client.reply()
            #expect(ehlo.contains("AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"), "\(ehlo)")
            try await client.send("STARTTLS\r\n")
            await client.expectReply("554 5.5.1 Error: TLS already active")
            try await client.send(plainAuth("alice", "wrong"))
            await client.expectReply("535 5.7.8 Authentication credentials invalid")
            await client.close()

            // Plain text on the implicit TLS port: no SMTP reply, and no backend connection.
            let linesBefore = recorder.backendLines.withLock { $0.count }
            var plain = try await TestClient.connect(port: ports[1], group: group)
            try await plain.send("EHLO plain.example\r\n")
            await plain.expectReply("<closed>")
            #expect(recorder.backendLines.withLock { $0.count } == linesBefore)
        }
        #expect(recorder.attempts.first?.tlsVersion == "TLSv1.3")
        try await group.shutdownGracefully()
    }

    @Test("bytes pipelined behind STARTTLS are refused and never answered", .timeLimit(.minutes(1)))
    func injection() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let recorder = Recorder()
        let store = try TLSContextStore(settings: Fixtures.settings())
        try await withProxyListeners(
            group: group, proxy: { $0.tls = Fixtures.settings() }, policy: GuardPolicy(),
            registry: ConnectionRegistry(maxTotal: 10, maxPerClient: 10), tls: store, events: recorder,
            backendHandler: { try $0.pipeline.syncOperations.addHandler(TLSBackendHandler(recorder: recorder, tls: nil)) }
        ) { ports in
            var client = try await TestClient.connect(port: ports[0], group: group)
            _ = await client.reply()
            try await client.send("EHLO client.example\r\n")
            _ = await client.reply()
            // CVE-2011-0411: a command in the same packet as STARTTLS.
            try await client.send("STARTTLS\r\nRSET\r\nMAIL FROM:<injected@example.org>\r\n")
            await client.expectReply("554 5.5.1 mx.test Error: command pipelined after STARTTLS, closing")
            await client.expectReply("<closed>")
        }
        let lines = recorder.backendLines.withLock { $0 }
        #expect(!lines.contains { $0.contains("RSET") || $0.contains("injected") }, "\(lines)")
        try await group.shutdownGracefully()
    }

    @Test("a TLS ClientHello on a plain port gets a plain refusal at once", .timeLimit(.minutes(1)))
    func clientHelloOnPlainPort() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        try await withProxyListeners(
            group: group, proxy: { $0.commandTimeout = .seconds(30) }, policy: GuardPolicy(),
            registry: ConnectionRegistry(maxTotal: 10, maxPerClient: 10)
        ) { ports in
            var client = try await TestClient.connect(port: ports[0], group: group)
            await client.expectReply(prefix: "220")
            // The start of a real ClientHello record: no end of line will ever come.
            try await client.send(String(decoding: [0x16, 0x03, 0x01, 0x00, 0xF1, 0x01, 0x00, 0x00, 0xED, 0x03, 0x03], as: UTF8.self))
            await client.expectReply("554 5.5.1 mx.test Error: TLS handshake on a plain SMTP port; send STARTTLS first")
            await client.expectReply("<closed>")
        }
        try await group.shutdownGracefully()
    }

    @Test("a client that never completes the TLS handshake is closed at the handshake timeout", .timeLimit(.minutes(1)))
    func handshakeTimeout() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let store = try TLSContextStore(settings: Fixtures.settings())
        try await withProxyListeners(
            group: group,
            proxy: {
                $0.tls = Fixtures.settings()
                $0.tls.handshakeTimeout = .milliseconds(300)
                $0.listenTLS = [HostPort(host: "127.0.0.1", port: 0)]
            },
            policy: GuardPolicy(), registry: ConnectionRegistry(maxTotal: 10, maxPerClient: 10), tls: store
        ) { ports in
            let began = ContinuousClock.now
            var silent = try await TestClient.connect(port: ports[1], group: group)
            await silent.expectReply("<closed>")
            #expect(ContinuousClock.now - began < .seconds(20))
            // After STARTTLS too.
            var client = try await TestClient.connect(port: ports[0], group: group)
            _ = await client.reply()
            try await client.send("STARTTLS\r\n")
            await client.expectReply("220 2.0.0 Ready to start TLS")
            await client.expectReply("<closed>")
        }
        try await group.shutdownGracefully()
    }

    @Test("a reloaded certificate serves new sessions while open ones go on", .timeLimit(.minutes(1)))
    func reload() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("smtpguard-tls-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificate = folder.appendingPathComponent("cert.pem").path
        let key = folder.appendingPathComponent("key.pem").path
        func install(_ name: String) throws {
            for (from, to) in [("\(name).pem", certificate), ("\(name).key", key)] {
                try? FileManager.default.removeItem(atPath: to)
                try FileManager.default.copyItem(atPath: Fixtures.path(from), toPath: to)
            }
        }
        try install("guard")
        var settings = TLSSettings()
        settings.certificate = certificate
        settings.key = key
        let store = try TLSContextStore(settings: settings)
        try await withProxyListeners(
            group: group, proxy: { $0.tls = settings; $0.listenTLS = [HostPort(host: "127.0.0.1", port: 0)] }, policy: GuardPolicy(),
            registry: ConnectionRegistry(maxTotal: 10, maxPerClient: 10), tls: store
        ) { ports in
            var before = try await TestClient.connect(port: ports[1], group: group, implicitTLS: true)
            await before.expectReply(prefix: "220")
            #expect(try await before.peerCommonName().contains("guard.test.example"))

            // A broken file on reload leaves the certificate in use.
            try FileManager.default.removeItem(atPath: key)
            try Data("garbage".utf8).write(to: URL(fileURLWithPath: key))
            #expect(throws: TLSLoadError.self) { try store.reload() }
            try install("renewed")
            try store.reload()

            var after = try await TestClient.connect(port: ports[1], group: group, implicitTLS: true)
            await after.expectReply(prefix: "220")
            #expect(try await after.peerCommonName().contains("renewed.test.example"))
            // The session opened before the reload still works.
            try await before.send("NOOP\r\n")
            await before.expectReply(prefix: "250")
            await before.close()
            await after.close()
        }
        try await group.shutdownGracefully()
    }

    @Test("STARTTLS to the backend, with its certificate verified; AUTH goes to it only inside TLS", .timeLimit(.minutes(1)))
    func backendSTARTTLS() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let recorder = Recorder()
        let serverContext = try TLSContextStore(settings: Fixtures.settings()).context
        var proxy = ProxyConfiguration()
        proxy.backendTLS = .starttls
        proxy.backendTLSCA = Fixtures.path("ca.pem")
        proxy.backendTLSServerName = "mx.test.example"
        let backendTLS = try BackendTLS(proxy)
        try await withProxyListeners(
            group: group, proxy: { $0.backendTLS = .starttls }, policy: GuardPolicy(),
            registry: ConnectionRegistry(maxTotal: 10, maxPerClient: 10), backendTLS: backendTLS, events: recorder,
            backendHandler: { try $0.pipeline.syncOperations.addHandler(TLSBackendHandler(recorder: recorder, tls: serverContext)) }
        ) { ports in
            var client = try await TestClient.connect(port: ports[0], group: group)
            await client.expectReply(prefix: "220 mx.test")
            try await client.send("EHLO client.example\r\n")
            #expect(await client.reply().contains("AUTH PLAIN"))
            try await client.send(plainAuth("alice", "secret"))
            await client.expectReply("235 2.7.0 Authentication successful")
            await client.close()
        }
        let lines = recorder.backendLines.withLock { $0 }
        #expect(Array(lines.prefix(2)) == ["plain: EHLO mx.test", "plain: STARTTLS"], "\(lines)")
        #expect(lines.dropFirst(2).allSatisfy { $0.hasPrefix("tls: ") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("tls: AUTH PLAIN") })
        try await group.shutdownGracefully()
    }

    @Test("a backend that sends more after its 220 to STARTTLS, or fails verification, ends the session with 421", .timeLimit(.minutes(1)))
    func backendTLSFailures() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let recorder = Recorder()
        let serverContext = try TLSContextStore(settings: Fixtures.settings()).context
        var verified = ProxyConfiguration()
        verified.backendTLS = .starttls
        verified.backendTLSCA = Fixtures.path("ca.pem")
        verified.backendTLSServerName = "mx.test.example"
        try await withProxyListeners(
            group: group, proxy: { $0.backendTLS = .starttls }, policy: GuardPolicy(),
            registry: ConnectionRegistry(maxTotal: 10, maxPerClient: 10), backendTLS: try BackendTLS(verified), events: recorder,
            backendHandler: {
                try $0.pipeline.syncOperations.addHandler(TLSBackendHandler(recorder: recorder, tls: serverContext, injectAfterSTARTTLS: true))
            }
        ) { ports in
            var client = try await TestClient.connect(port: ports[0], group: group)
            await client.expectReply(prefix: "220 mx.test")  // the guard's own: the backend is asked at MAIL
            try await client.send("EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n")
            #expect(await client.reply().contains("PIPELINING"))
            await client.expectReply(prefix: "421 4.3.0")
        }
        // A certificate from a CA the guard does not trust (the system's roots only).
        var wrongName = verified
        wrongName.backendTLSCA = ""
        try await withProxyListeners(
            group: group, proxy: { $0.backendTLS = .starttls }, policy: GuardPolicy(),
            registry: ConnectionRegistry(maxTotal: 10, maxPerClient: 10), backendTLS: try BackendTLS(wrongName), events: recorder,
            backendHandler: { try $0.pipeline.syncOperations.addHandler(TLSBackendHandler(recorder: recorder, tls: serverContext)) }
        ) { ports in
            var client = try await TestClient.connect(port: ports[0], group: group)
            await client.expectReply(prefix: "220 mx.test")  // the guard's own: the backend is asked at MAIL
            try await client.send("EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n")
            #expect(await client.reply().contains("PIPELINING"))
            await client.expectReply(prefix: "421 4.3.0")
        }
        try await group.shutdownGracefully()
    }

    @Test("implicit TLS to the backend", .timeLimit(.minutes(1)))
    func backendImplicitTLS() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let recorder = Recorder()
        let serverContext = try TLSContextStore(settings: Fixtures.settings()).context
        var proxy = ProxyConfiguration()
        proxy.backendTLS = .tls
        proxy.backendTLSCA = Fixtures.path("ca.pem")
        proxy.backendTLSServerName = "mx.test.example"
        try await withProxyListeners(
            group: group, proxy: { $0.backendTLS = .tls }, policy: GuardPolicy(),
            registry: ConnectionRegistry(maxTotal: 10, maxPerClient: 10), backendTLS: try BackendTLS(proxy), events: recorder,
            backendHandler: { channel in
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverContext))
                try channel.pipeline.syncOperations.addHandler(TLSBackendHandler(recorder: recorder, tls: nil, implicitTLS: true))
            }
        ) { ports in
            var client = try await TestClient.connect(port: ports[0], group: group)
            await client.expectReply(prefix: "220 mx.test")
            try await client.send("EHLO client.example\r\n")
            _ = await client.reply()
            try await client.send(plainAuth("alice", "secret"))
            await client.expectReply("235 2.7.0 Authentication successful")
            await client.close()
        }
        #expect(recorder.backendLines.withLock { $0 }.allSatisfy { $0.hasPrefix("tls: ") })
        try await group.shutdownGracefully()
    }
}

@Suite("Idle and slow clients")
struct IdleClientTests {
    @Test("a thousand idle or trickling connections do not hold up a real session", .timeLimit(.minutes(1)))
    func idleAndSlow() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let registry = ConnectionRegistry(maxTotal: 2000, maxPerClient: 2000)
        try await withProxy(
            group: group, proxy: { $0.maxConnections = 2000; $0.maxConnectionsPerIP = 2000; $0.maxCommandLine = 512 },
            policy: GuardPolicy(), registry: registry
        ) { port in
            // 800 connections that say nothing at all, 200 that send a command one byte at a time.
            var held: [TestClient] = []
            for _ in 0..<1000 { held.append(try await TestClient.connect(port: port, group: group)) }
            for i in 0..<held.count { await held[i].expectReply(prefix: "220") }
            let trickle = Array(held.suffix(200))
            #expect(registry.openConnections == 1000)

            let began = ContinuousClock.now
            var client = try await TestClient.connect(port: port, group: group)
            await client.expectReply(prefix: "220 mx.test")
            for (index, byte) in "MAIL FROM:<slow@example.org>".utf8.enumerated() where index < 10 {
                for slow in trickle { slow.channel.writeAndFlush(ByteBuffer(bytes: [byte]), promise: nil) }
                try await client.send("NOOP\r\n")
                await client.expectReply(prefix: "250")
            }
            try await client.send("EHLO client.example\r\n")
            await client.expectReply(prefix: "250")
            try await client.send(plainAuth("alice", "wrong"))
            await client.expectReply("535 5.7.8 Authentication credentials invalid")
            try await client.send("QUIT\r\n")
            await client.expectReply(prefix: "221")
            let took = ContinuousClock.now - began
            // A generous bound: the session must not wait on the others (it takes milliseconds).
            #expect(took < .seconds(10), "the session took \(took) beside 1,000 idle connections")
            #expect(registry.openConnections >= 1000)
            await client.close()
            for connection in held { await connection.close() }
        }
        try await group.shutdownGracefully()
    }
}

@Suite("Behind a load balancer")
struct LoadBalancerTests {
    @Test("a trusted balancer's PROXY header names the client; a bad one closes the connection", .timeLimit(.minutes(1)))
    func proxyHeader() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let recorder = Recorder()
        let store = try TLSContextStore(settings: Fixtures.settings())
        try await withProxyListeners(
            group: group,
            proxy: {
                $0.haproxyTrustedNetworks = NetworkList([IPNetwork("127.0.0.1/32")!])
                $0.tls = Fixtures.settings()
                $0.listenTLS = [HostPort(host: "127.0.0.1", port: 0)]
            },
            policy: GuardPolicy(), registry: ConnectionRegistry(maxTotal: 10, maxPerClient: 10), tls: store, events: recorder,
            backendHandler: { try $0.pipeline.syncOperations.addHandler(TLSBackendHandler(recorder: recorder, tls: nil)) }
        ) { ports in
            var client = try await TestClient.connect(port: ports[0], group: group)
            try await client.send("PROXY TCP4 203.0.113.9 192.0.2.25 40000 587\r\n")
            await client.expectReply(prefix: "220 mx.test")
            try await client.send("EHLO client.example\r\n")
            _ = await client.reply()
            try await client.send(plainAuth("alice", "wrong"))
            await client.expectReply("535 5.7.8 Authentication credentials invalid")
            await client.close()

            // PROXY v2, then TLS from the first byte, on the implicit TLS listener.
            let v2 = ClientIdentity.proxyV2(
                source: IPAddress("2001:db8::77")!, sourcePort: 40001, destination: IPAddress("2001:db8::25")!, destinationPort: 465)
            let (stream, continuation) = AsyncStream.makeStream(of: String.self)
            let channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(LineCollector(continuation)) }
                }
                .connect(host: "127.0.0.1", port: ports[1]).get()
            try await channel.writeAndFlush(v2)
            var tlsClient = TestClient(channel: channel, lines: stream.makeAsyncIterator())
            try await tlsClient.startTLS()
            await tlsClient.expectReply(prefix: "220 mx.test")
            try await tlsClient.send("EHLO client.example\r\n")
            _ = await tlsClient.reply()
            try await tlsClient.send(plainAuth("alice", "wrong"))
            await tlsClient.expectReply("535 5.7.8 Authentication credentials invalid")
            await tlsClient.close()

            // No header where one is required: closed, nothing said, no backend connection.
            var bad = try await TestClient.connect(port: ports[0], group: group)
            try await bad.send("EHLO client.example\r\n")
            await bad.expectReply("<closed>")
        }
        let clients = recorder.attempts.map(\.client.description)
        #expect(clients == ["203.0.113.9", "2001:db8::77"], "\(clients)")
        #expect(recorder.attempts.last?.tlsVersion == "TLSv1.3")
        try await group.shutdownGracefully()
    }
}
