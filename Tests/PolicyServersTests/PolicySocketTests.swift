// The policy servers on real loopback sockets: HTTP keep-alive, credentials, size limits
// and malformed requests for Dovecot's endpoint; several requests per connection, a client
// gone mid-request and a Unix socket for Postfix's.

import Foundation
import GuardCore
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization
import Testing

@testable import PolicyServers

/// A blocking loopback client: enough for a test to speak HTTP or Postfix's protocol.
struct LoopbackSocket {
    let fd: Int32

    init(port: Int) throws {
        self.fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(self.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(self.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// To `[::1]:port`.
    init(ipv6Port port: Int) throws {
        self.fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = in_port_t(UInt16(port).bigEndian)
        address.sin6_addr = in6addr_loopback
        let result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(self.fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(self.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    init(unixPath: String) throws {
        self.fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path(unixPath).enumerated() { raw[i] = byte }
        }
        let result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(self.fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(self.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func path(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }
    }

    func send(_ text: String) { _ = Array(text.utf8).withUnsafeBytes { Glibc.send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }

    /// Reads until `done` says the bytes so far are complete, or the peer closes (or 5 s).
    func read(until done: (String) -> Bool) -> String {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !done(String(decoding: data, as: UTF8.self)) {
            let count = recv(self.fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            data += buffer[0..<count]
        }
        return String(decoding: data, as: UTF8.self)
    }

    func close() { Glibc.close(self.fd) }

    /// One HTTP response: its head and a body of Content-Length bytes.
    func httpResponse() -> String {
        self.read { text in
            guard let end = text.range(of: "\r\n\r\n") else { return false }
            let head = text[..<end.lowerBound].lowercased()
            let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }.flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
            return text.utf8.count - text[..<end.upperBound].utf8.count >= length
        }
    }
}

@Suite("Policy servers on sockets", .serialized)
struct PolicySocketTests {
    static let logger = Logger(label: "test")

    /// Runs `body` with a Dovecot endpoint and a Postfix server listening on free ports.
    func withServers(
        dovecot: DovecotPolicyConfiguration, postfix: PostfixPolicyConfiguration, _ body: @Sendable (Int, Int) async throws -> Void
    ) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clock = ManualClock()
        var policy = GuardPolicy()
        policy.sending.defaults.recipientsPerMinute = 2
        let engine = Guard(policy: policy, clock: clock, seed: 1)
        engine.placeBan(.ip(IPAddress("192.0.2.66")!), duration: .seconds(600))
        let ports = Mutex<(Int, Int)>((0, 0))
        let dovecotService = try DovecotPolicyService(
            configuration: dovecot, policy: DovecotPolicy(guardEngine: engine, events: Events(), configuration: dovecot), group: group, logger: Self.logger,
            onListening: { port in ports.withLock { $0.0 = port } })
        let postfixPolicy = PostfixPolicy(guardEngine: engine, configuration: postfix)
        let postfixService = try PostfixPolicyService(
            configuration: postfix, answer: postfixPolicy.answer, group: group, logger: Self.logger, onListening: { list in ports.withLock { $0.1 = list.first ?? 0 } })
        let serviceGroup = ServiceGroup(services: [dovecotService, postfixService], logger: Self.logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await serviceGroup.run() }
            for _ in 0..<200 where ports.withLock({ $0.0 == 0 || $0.1 == 0 }) { try await Task.sleep(for: .milliseconds(10)) }
            let (d, p) = ports.withLock { $0 }
            do {
                try await body(d, p)
            } catch {
                await serviceGroup.triggerGracefulShutdown()
                throw error
            }
            await serviceGroup.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        try await group.shutdownGracefully()
    }

    static var dovecot: DovecotPolicyConfiguration {
        var configuration = DovecotPolicyConfiguration()
        configuration.listen = "127.0.0.1:0"
        configuration.apiHeader = "X-Policy-Key: k3y"
        configuration.basicAuth = "dovecot:pa55"
        configuration.maxBodySize = 1024
        return configuration
    }

    static func postfix(_ extra: [String] = []) -> PostfixPolicyConfiguration {
        var configuration = PostfixPolicyConfiguration()
        configuration.listen = ["127.0.0.1:0"] + extra
        configuration.maxRequestSize = 1024
        return configuration
    }

    static let body = #"{"login":"alice","pwhash":"0abc","remote":"198.51.100.4","tls":true}"#
    static let credentials = "X-Policy-Key: k3y\r\nAuthorization: Basic \(Data("dovecot:pa55".utf8).base64EncodedString())\r\n"

    static func post(_ path: String, body: String, headers: String = credentials, close: Bool = false) -> String {
        "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\(headers)Content-Length: \(body.utf8.count)\r\n\(close ? "Connection: close\r\n" : "")\r\n\(body)"
    }

    @Test("keep-alive: allow and report on one connection; credentials, methods, commands, sizes and bodies checked")
    func dovecot() async throws {
        try await self.withServers(dovecot: Self.dovecot, postfix: Self.postfix()) { port, _ in
            let socket = try LoopbackSocket(port: port)
            defer { socket.close() }
            socket.send(Self.post("/?command=allow", body: Self.body))
            #expect(socket.httpResponse().hasSuffix(#"{"status":0,"msg":""}"#))
            socket.send(Self.post("/policy?command=report&x=1", body: #"{"login":"alice","pwhash":"0abc","remote":"198.51.100.4","success":false,"policy_reject":false}"#))
            #expect(socket.httpResponse().hasSuffix(#"{"status":0,"msg":""}"#))
            socket.send("GET /health HTTP/1.1\r\nHost: x\r\n\(Self.credentials)\r\n")
            #expect(socket.httpResponse().contains("200 OK"))

            let cases: [(String, String)] = [
                (Self.post("/?command=allow", body: Self.body, headers: ""), "401"),
                (Self.post("/?command=allow", body: Self.body, headers: "X-Policy-Key: k3y\r\n"), "401"),
                (Self.post("/?command=allow", body: Self.body, headers: "X-Policy-Key: wrong\r\nAuthorization: Basic \(Data("dovecot:pa55".utf8).base64EncodedString())\r\n"), "401"),
                (Self.post("/?command=allow", body: #"{"login":true,"remote":"198.51.100.4"}"#), "400"),
                (Self.post("/?command=allow", body: "{not json"), "400"),
                (Self.post("/?command=delete", body: Self.body), "400"),
                (Self.post("/", body: Self.body), "400"),
                ("GET /?command=allow HTTP/1.1\r\nHost: x\r\n\(Self.credentials)\r\n", "405"),
            ]
            for (request, status) in cases {
                socket.send(request)
                let response = socket.httpResponse()
                #expect(response.hasPrefix("HTTP/1.1 \(status)"), "\(request.prefix(60)) → \(response.prefix(40))")
            }
            // The connection is still usable after all that.
            socket.send(Self.post("/?command=allow", body: Self.body))
            #expect(socket.httpResponse().hasSuffix(#"{"status":0,"msg":""}"#))
            // Too large: 413, connection closed.
            socket.send(Self.post("/?command=allow", body: String(repeating: " ", count: 2000) + Self.body))
            #expect(socket.read { _ in false }.hasPrefix("HTTP/1.1 413"))
        }
    }

    @Test("Dovecot's endpoint on [::]:P beside Postfix's on 0.0.0.0:P: both start (IPv6 listeners are IPv6-only), each answers its family")
    func dualStack() async throws {
        // A port free for both families, below the ephemeral range other tests' :0 draw from.
        var found = 0
        for candidate in (0..<50).map({ _ in Int.random(in: 20_000..<32_000) }) where found == 0 {
            if let probe = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "::", port: candidate).get() {
                try await probe.close()
                found = candidate
            }
        }
        let port = found
        var dovecot = Self.dovecot
        dovecot.listen = "[::]:\(port)"
        var postfix = Self.postfix()
        postfix.listen = ["0.0.0.0:\(port)"]
        try await self.withServers(dovecot: dovecot, postfix: postfix) { dovecotPort, postfixPort in
            #expect(dovecotPort == port && postfixPort == port)
            let v4 = try LoopbackSocket(port: port)
            defer { v4.close() }
            v4.send("request=smtpd_access_policy\nprotocol_state=CONNECT\nclient_address=198.51.100.9\n\n")
            #expect(v4.read { $0.hasSuffix("\n\n") } == "action=DUNNO\n\n")
            let v6 = try LoopbackSocket(ipv6Port: port)
            defer { v6.close() }
            v6.send(Self.post("/?command=allow", body: Self.body))
            #expect(v6.httpResponse().hasSuffix(#"{"status":0,"msg":""}"#))
        }
    }

    @Test("a unix socket's group that does not exist stops the start with an error naming it")
    func unknownSocketGroup() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sg-policy-group-\(getpid()).sock").path
        var configuration = PostfixPolicyConfiguration()
        configuration.listen = ["unix:" + path]
        configuration.socketGroup = "no-such-group-sg"
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try PostfixPolicyService(
            configuration: configuration, answer: { _ in "DUNNO" }, group: group, logger: Logger(label: "test"))
        await #expect {
            try await server.run()
        } throws: { error in
            "\(error)".contains("postfix_policy.socket_group: no group named \"no-such-group-sg\"")
        }
        try await group.shutdownGracefully()
    }

    @Test("no credential configured would admit nobody (the configuration refuses it earlier)")
    func noCredentials() {
        #expect(!PolicyCredentials(DovecotPolicyConfiguration()).admits(.init([("X-API-Key", "")])))
    }

    @Test("several requests per connection; a protocol error closes without an answer; a client gone mid-request harms no one; a Unix socket")
    func postfix() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sg-policy-\(getpid()).sock").path
        var configuration = Self.postfix(["unix:" + path])
        let group = try #require(getgrgid(getgid()))
        configuration.socketGroup = String(cString: group.pointee.gr_name)
        try await self.withServers(dovecot: Self.dovecot, postfix: configuration) { _, port in
            var info = stat()
            #expect(stat(path, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o660, "mode \(String(info.st_mode & 0o777, radix: 8)): other local users must not connect")
            #expect(info.st_gid == getgid())
            let socket = try LoopbackSocket(port: port)
            defer { socket.close() }
            let rcpt = "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=198.51.100.4\nsasl_username=alice\ninstance=1\n"
            var answers: [String] = []
            for i in 0..<3 {
                socket.send(rcpt + "recipient_count=\(i)\nrecipient=r\(i)@x.test\nunknown_future_attribute=1\n\n")
                answers.append(socket.read { $0.hasSuffix("\n\n") })
            }
            #expect(answers[0] == "action=DUNNO\n\n" && answers[1] == "action=DUNNO\n\n")
            #expect(answers[2].hasPrefix("action=DEFER_IF_PERMIT Sending limit reached"))
            socket.send("request=smtpd_access_policy\nprotocol_state=CONNECT\nclient_address=192.0.2.66\n\n")
            #expect(socket.read { $0.hasSuffix("\n\n") }.hasPrefix("action=421 4.7.0 "))

            let gone = try LoopbackSocket(port: port)
            gone.send("request=smtpd_access_policy\nprotocol_st")
            gone.close()

            let bad = try LoopbackSocket(port: port)
            bad.send("protocol_state=RCPT\nclient_address=198.51.100.4\n\n")
            #expect(bad.read { _ in false } == "", "no request=: closed without an answer")
            bad.close()
            let big = try LoopbackSocket(port: port)
            big.send("request=smtpd_access_policy\nhelo_name=" + String(repeating: "h", count: 5000))
            #expect(big.read { _ in false } == "", "over the size limit: closed without an answer")
            big.close()

            let unix = try LoopbackSocket(unixPath: path)
            unix.send("request=smtpd_access_policy\nprotocol_state=CONNECT\nclient_address=198.51.100.9\n\n")
            #expect(unix.read { $0.hasSuffix("\n\n") } == "action=DUNNO\n\n")
            unix.close()
        }
        #expect(!FileManager.default.fileExists(atPath: path), "the socket is removed at shutdown")
    }
}
