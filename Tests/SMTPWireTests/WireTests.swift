import GuardCore
import NIOCore
import Testing

@testable import SMTPWire

@Suite("Framing, replies, SASL, EHLO, identity")
struct WireTests {
    func lines(_ input: String, limit: Int = 512, byteByByte: Bool) -> [String] {
        var framer = SMTPLineFramer()
        var buffer = ByteBuffer()
        var out: [String] = []
        func drain() {
            while let framed = framer.next(from: &buffer, limit: limit) {
                switch framed {
                case .line(let line): out.append(String(buffer: line.content))
                case .tooLong: out.append("<too long>")
                case .bareNewline: out.append("<bare newline>")
                case .tlsRecord: out.append("<tls>")
                }
            }
        }
        if byteByByte {
            for byte in input.utf8 {
                buffer.writeInteger(byte)
                drain()
            }
        } else {
            buffer.writeString(input)
            drain()
        }
        return out
    }

    @Test("lines end only with CRLF, fed byte by byte or all at once", arguments: [false, true])
    func framing(byteByByte: Bool) {
        #expect(lines("EHLO a\r\nNOOP\r\n", byteByByte: byteByByte) == ["EHLO a", "NOOP"])
        #expect(lines("EHLO a\nNOOP\r\n", byteByByte: byteByByte) == ["<bare newline>", "NOOP"])
        #expect(lines("EH\rLO\r\nX\r\n", byteByByte: byteByByte) == ["<bare newline>", "X"])
        #expect(lines("\r\n", byteByByte: byteByByte) == [""])
        #expect(lines("NOOP", byteByByte: byteByByte) == [])
        let long = String(repeating: "A", count: 600)
        #expect(lines(long + "\r\nNOOP\r\n", byteByByte: byteByByte) == ["<too long>", "NOOP"])
        // Exactly at the limit (CRLF included) is fine; one more is not.
        let fits = String(repeating: "B", count: 510)
        #expect(lines(fits + "\r\n", byteByByte: byteByByte) == [fits])
        #expect(lines(fits + "B\r\n", byteByByte: byteByByte) == ["<too long>"])
        // A long line reported once however it arrives, then framing resumes.
        #expect(lines(String(repeating: "C", count: 5000) + "\r\nQUIT\r\n", byteByByte: byteByByte) == ["<too long>", "QUIT"])
    }

    @Test("replies: single, multi-line, malformed")
    func replies() throws {
        var accumulator = SMTPReplyAccumulator()
        #expect(try accumulator.feed(ByteBuffer(string: "250-mx.example.org")) == nil)
        #expect(try accumulator.feed(ByteBuffer(string: "250-PIPELINING")) == nil)
        #expect(try accumulator.feed(ByteBuffer(string: "250 8BITMIME")) == SMTPReply(code: 250, lines: ["mx.example.org", "PIPELINING", "8BITMIME"]))
        #expect(try accumulator.feed(ByteBuffer(string: "334 ")) == SMTPReply(code: 334, ""))
        #expect(try accumulator.feed(ByteBuffer(string: "220")) == SMTPReply(code: 220, ""))
        #expect(throws: SMTPReplyAccumulator.Failure.malformed) { try accumulator.feed(ByteBuffer(string: "25x ok")) }
        #expect(throws: SMTPReplyAccumulator.Failure.malformed) { try accumulator.feed(ByteBuffer(string: "250_ok")) }
        #expect(throws: SMTPReplyAccumulator.Failure.malformed) { try accumulator.feed(ByteBuffer(string: "999 no")) }
        var other = SMTPReplyAccumulator()
        _ = try other.feed(ByteBuffer(string: "250-a"))
        #expect(throws: SMTPReplyAccumulator.Failure.codeChanged) { try other.feed(ByteBuffer(string: "251 b")) }
        #expect(SMTPReply(code: 250, lines: ["a", "b"]).encoded == "250-a\r\n250 b\r\n")
        #expect(SMTPReply(configured: "535 5.7.8 Authentication credentials invalid") == SMTPReply(code: 535, "5.7.8 Authentication credentials invalid"))
    }

    @Test("commands: verbs, arguments and junk")
    func commands() {
        #expect(SMTPCommand(line: ByteBuffer(string: "ehlo client.example"))?.verb == .ehlo)
        #expect(SMTPCommand(line: ByteBuffer(string: "AUTH PLAIN abc="))?.argument == "PLAIN abc=")
        #expect(SMTPCommand(line: ByteBuffer(string: "FOO"))?.verb == .other)
        #expect(SMTPCommand(line: ByteBuffer(string: "")) == nil)
        #expect(SMTPCommand(line: ByteBuffer(string: "MAIL\0FROM")) == nil)
        #expect(SMTPCommand(line: ByteBuffer(string: "1234 x")) == nil)
        #expect(SMTPCommand.looksLikeAuth(ByteBuffer(string: "auth login")))
        #expect(!SMTPCommand.looksLikeAuth(ByteBuffer(string: "AUTHX")))
    }

    @Test("base64 is strict")
    func base64() {
        #expect(Base64.decode("YWxpY2U=") == Array("alice".utf8))
        #expect(Base64.decode("YWxpY2U") == Array("alice".utf8))
        #expect(Base64.encode("alice") == "YWxpY2U=")
        #expect(Base64.encode([0, 1, 2, 255]) == "AAEC/w==")
        for bad in ["YW*p", "YWxp Y2U=", "Y", "YWxpY2U===", "YW=xpY2U", "YWxpY2V="] {
            #expect(Base64.decode(bad) == nil, "\(bad)")
        }
        #expect(SASL.decodeResponse("=") == [])
    }

    @Test("SASL PLAIN, LOGIN and CRAM-MD5")
    func sasl() throws {
        let plain = try SASL.parsePlain(Array("\0alice\0secret".utf8))
        #expect(plain.username == "alice")
        #expect(plain.authorizationID == "")
        let withAuthz = try SASL.parsePlain(Array("boss\0alice\0pw".utf8))
        #expect(withAuthz.authorizationID == "boss")
        #expect(throws: SASLError.malformed) { try SASL.parsePlain(Array("alice\0secret".utf8)) }
        #expect(throws: SASLError.malformed) { try SASL.parsePlain(Array("\0\0secret".utf8)) }
        #expect(throws: SASLError.malformed) { try SASL.parsePlain(Array("\0ali\nce\0secret".utf8)) }
        #expect(throws: SASLError.malformed) { try SASL.parsePlain([0] + Array(repeating: 0x61, count: 256) + [0, 0x62]) }
        // RFC 2195's own example: the username is read from the response.
        #expect(try SASL.parseCramMD5(Array("tim b913a602c7eda7a495b4e6e7334d3890".utf8)).username == "tim")
        #expect(throws: SASLError.malformed) { try SASL.parseCramMD5(Array("tim b913a602".utf8)) }
        #expect(throws: SASLError.malformed) { try SASL.parseCramMD5(Array("b913a602c7eda7a495b4e6e7334d3890".utf8)) }
        #expect(String(decoding: Base64.decode(SASL.loginUsernamePrompt)!, as: UTF8.self) == "Username:")
        #expect(String(decoding: Base64.decode(SASL.loginPasswordPrompt)!, as: UTF8.self) == "Password:")
        let evidence = plain.evidence(hasher: PasswordHasher(nonce: Array("n".utf8)))
        #expect(evidence.passwordHash != nil)
        #expect(!evidence.isDefaultPassword)
        #expect(try SASL.parsePlain(Array("\0admin\0admin".utf8)).evidence(hasher: PasswordHasher(nonce: [])).isDefaultPassword)
    }

    @Test("EHLO editing hides what the guard does not relay and names the guard")
    func ehlo() {
        let backend = SMTPReply(code: 250, lines: [
            "backend.internal Hello", "PIPELINING", "XCLIENT NAME ADDR", "STARTTLS", "AUTH PLAIN LOGIN DIGEST-MD5", "AUTH=PLAIN", "CHUNKING", "XFORWARD NAME", "SIZE 1000",
        ])
        let offered = EHLOEditor(hostname: "mx.example.org", offerAuth: true, mechanisms: [.plain, .login, .cramMD5]).edit(backend)
        #expect(offered.reply.lines == ["mx.example.org", "PIPELINING", "AUTH PLAIN LOGIN", "SIZE 1000"])
        #expect(offered.mechanisms == [.plain, .login])
        let hidden = EHLOEditor(hostname: "mx.example.org", offerAuth: false, mechanisms: [.plain]).edit(backend)
        #expect(hidden.reply.lines == ["mx.example.org", "PIPELINING", "SIZE 1000"])
        #expect(hidden.mechanisms.isEmpty)
        #expect(EHLOEditor.offers("XCLIENT", in: backend))
    }

    @Test("XCLIENT and PROXY headers")
    func identity() {
        #expect(ClientIdentity.xclientCommand(client: IPAddress("192.0.2.7")!, port: 4242) == "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.7 PORT=4242")
        #expect(ClientIdentity.xclientCommand(client: IPAddress("2001:db8::7")!, port: nil) == "XCLIENT NAME=[UNAVAILABLE] ADDR=IPV6:2001:db8::7")
        #expect(ClientIdentity.xtext("a+b=c d") == "a+2Bb+3Dc+20d")
        #expect(
            ClientIdentity.proxyV1(source: IPAddress("192.0.2.7")!, sourcePort: 4242, destination: IPAddress("198.51.100.1")!, destinationPort: 25)
                == "PROXY TCP4 192.0.2.7 198.51.100.1 4242 25\r\n")
        let v2 = ClientIdentity.proxyV2(source: IPAddress("192.0.2.7")!, sourcePort: 4242, destination: IPAddress("198.51.100.1")!, destinationPort: 25)
        #expect(Array(v2.readableBytesView) == ClientIdentity.proxyV2Signature + [0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 7, 198, 51, 100, 1, 0x10, 0x92, 0x00, 0x19])
        let v6 = ClientIdentity.proxyV2(source: IPAddress("2001:db8::1")!, sourcePort: 1, destination: IPAddress("2001:db8::2")!, destinationPort: 2)
        #expect(v6.readableBytes == 16 + 36)
    }
}

@Suite("Session machine: timers and backend trouble")
struct SessionTroubleTests {
    @Test("an idle client is told 421 and disconnected")
    func idleTimeout() {
        var driver = SessionDriver()
        driver.start()
        driver.fire(.clientIdle)
        #expect(driver.transcript.contains("S: 421 4.4.2 mx.example.org Error: timeout exceeded"))
        #expect(driver.closed)
    }

    @Test("a backend that cannot be reached gives 421 4.3.0 and a clear log line")
    func backendDown() {
        var machine = SMTPSessionStateMachine(
            configuration: SessionConfiguration(.plainAuth, hasher: PasswordHasher(nonce: [])),
            client: ClientInfo(address: IPAddress("192.0.2.1")!, port: 1, localAddress: IPAddress("192.0.2.2")!, localPort: 25, authAllowed: true))
        _ = machine.clientAdmitted()
        _ = machine.clientLineReceived(.line(SMTPLine("EHLO x")), more: false)
        #expect(machine.clientLineReceived(.line(SMTPLine("MAIL FROM:<a@example.org>")), more: false).contains(.connectBackend))
        let actions = machine.backendConnectFailed("connection refused")
        #expect(actions.contains { if case .sendToClient(let reply) = $0 { reply.code == 421 && reply.lines[0].hasPrefix("4.3.0") } else { false } })
        #expect(actions.contains { if case .backendFailed(let text) = $0 { text.contains("connection refused") } else { false } })
        #expect(actions.contains(.closeClient))
        #expect(machine.isClosed)
    }

    @Test("a slow backend gives 421 4.3.0")
    func backendSlow() {
        var machine = self.openedMachine()
        _ = machine.clientLineReceived(.line(SMTPLine("NOOP")), more: false)
        let actions = machine.timerFired(.backendReply)
        #expect(actions.contains { if case .sendToClient(let reply) = $0 { reply.code == 421 } else { false } })
        #expect(actions.contains(.closeBackend))
    }

    @Test("a backend reply to no command closes both sides")
    func unsolicitedReply() {
        var machine = self.openedMachine()
        let actions = machine.backendReplyReceived(SMTPReply(code: 250, "surprise"), clientWaiting: false)
        #expect(actions.contains(.closeBackend))
        #expect(actions.contains(.closeClient))
        #expect(actions.contains { if case .backendFailed = $0 { true } else { false } })
    }

    @Test("a backend greeting other than 220 never reaches the client as it is")
    func badGreeting() {
        var driver = SessionDriver()
        driver.backend.greeting = SMTPReply(code: 554, "backend.internal ESMTP Postfix 3.7.11 go away")
        driver.start()
        driver.client("EHLO x\r\nMAIL FROM:<a@example.org>\r\n")
        #expect(!driver.transcript.joined().contains("Postfix"))
        #expect(driver.transcript.contains { $0.hasPrefix("S: 421 4.3.0") })
    }

    @Test("XCLIENT not offered to the guard is a clear configuration error")
    func xclientRefused() {
        var proxy = ProxyConfiguration.plainAuth
        proxy.identity = .xclient
        var driver = SessionDriver(proxy: proxy)
        driver.backend.xclientAllowed = false
        driver.start()
        driver.client("EHLO x\r\nMAIL FROM:<a@example.org>\r\n")
        #expect(driver.transcript.contains { $0.contains("smtpd_authorized_xclient_hosts") })
        #expect(driver.transcript.contains { $0.hasPrefix("S: 421 4.3.0") })
    }

    @Test("too many protocol errors disconnect the client")
    func errorLimit() {
        var driver = SessionDriver()
        driver.start()
        driver.client(String(repeating: "STARTTLS\r\n", count: 12))
        #expect(driver.transcript.contains("S: 421 4.7.0 mx.example.org Error: too many errors"))
        #expect(driver.closed)
    }

    @Test("no password or AUTH payload reaches a record, a log line or the client")
    func noSecrets() {
        var driver = SessionDriver()
        driver.start()
        let payload = Base64.encode(Array("\0alice\0Sup3r-Secret-Pw".utf8))
        driver.client("EHLO x\r\nAUTH PLAIN \(payload)\r\nAUTH LOGIN \(Base64.encode("bob"))\r\n\(Base64.encode("Sup3r-Secret-Pw"))\r\n")
        let told = driver.transcript.filter { !$0.hasPrefix("B< ") }.joined(separator: "\n")
        #expect(!told.contains("Sup3r-Secret-Pw"))
        #expect(!told.contains(payload))
        #expect(!told.contains(Base64.encode("Sup3r-Secret-Pw")))
        for (attempt, _, _) in driver.records {
            let line = GuardEvent.attempt(AttemptRecord(attempt: attempt, session: "s", replyCode: 535, decision: Decision(verdict: .refuse))).jsonLine
            #expect(!line.contains("Sup3r") && !line.contains(payload))
        }
        #expect(driver.records.count == 2)
    }

    func freshMachine() -> SMTPSessionStateMachine {
        var machine = SMTPSessionStateMachine(
            configuration: SessionConfiguration(.plainAuth, hasher: PasswordHasher(nonce: [])),
            client: ClientInfo(address: IPAddress("192.0.2.1")!, port: 1, localAddress: IPAddress("192.0.2.2")!, localPort: 25, authAllowed: true))
        _ = machine.clientAdmitted()
        _ = machine.clientLineReceived(.line(SMTPLine("EHLO x")), more: false)
        return machine
    }

    /// A session whose link to the backend is up (a MAIL opened it, an RSET ended that).
    func openedMachine() -> SMTPSessionStateMachine {
        var machine = self.freshMachine()
        _ = machine.clientLineReceived(.line(SMTPLine("MAIL FROM:<a@example.org>")), more: false)
        _ = machine.backendConnected()
        _ = machine.backendReplyReceived(SMTPReply(code: 220, "backend"), clientWaiting: false)
        _ = machine.backendReplyReceived(SMTPReply(code: 250, lines: ["backend", "AUTH PLAIN LOGIN"]), clientWaiting: false)
        _ = machine.backendReplyReceived(SMTPReply(code: 250, "2.1.0 Ok"), clientWaiting: false)
        _ = machine.clientLineReceived(.line(SMTPLine("RSET")), more: false)
        _ = machine.backendReplyReceived(SMTPReply(code: 250, "2.0.0 Ok"), clientWaiting: false)
        return machine
    }

    @Test("an idle client never costs a backend connection; MAIL opens it, and the backend hears the client's EHLO first")
    func lazyLink() {
        var machine = self.freshMachine()
        for command in ["NOOP", "RSET", "HELP", "VRFY bob", "EHLO again.example", "HELO last.example"] {
            let actions = machine.clientLineReceived(.line(SMTPLine(command)), more: false)
            #expect(!actions.contains(.connectBackend), "\(command)")
            #expect(!actions.contains { if case .sendToBackend = $0 { true } else { false } }, "\(command)")
            #expect(actions.contains { if case .sendToClient = $0 { true } else { false } }, "\(command)")
        }
        let mail = machine.clientLineReceived(.line(SMTPLine("MAIL FROM:<a@example.org>")), more: true)
        #expect(mail.contains(.connectBackend))
        #expect(!mail.contains { if case .sendToBackend = $0 { true } else { false } })
        // Pipelined behind it: kept in order, nothing sent before the link is up.
        let rcpt = machine.clientLineReceived(.line(SMTPLine("RCPT TO:<b@example.org>")), more: false)
        #expect(!rcpt.contains(.connectBackend) && !rcpt.contains { if case .sendToBackend = $0 { true } else { false } })
        #expect(!machine.backendConnected().contains { if case .sendToBackend = $0 { true } else { false } })
        let greeted = machine.backendReplyReceived(SMTPReply(code: 220, "backend"), clientWaiting: false)
        #expect(greeted.contains(.sendToBackend(ByteBuffer(string: "HELO last.example\r\n"))))
        let up = machine.backendReplyReceived(SMTPReply(code: 250, "backend"), clientWaiting: false)
        #expect(up == [
            .cancelTimer(.backendReply), .sendToBackend(ByteBuffer(string: "MAIL FROM:<a@example.org>\r\n")),
            .sendToBackend(ByteBuffer(string: "RCPT TO:<b@example.org>\r\n")), .startTimer(.backendReply, .seconds(300)),
        ])
        #expect(machine.backendReplyReceived(SMTPReply(code: 250, "2.1.0 Ok"), clientWaiting: false).contains(.sendToClient(SMTPReply(code: 250, "2.1.0 Ok"))))
    }

    @Test("an AUTH waiting for the link: its credentials count as sent only when they go out; a mechanism the backend lacks is a 454, not a guess")
    func authWaitsForLink() {
        var machine = self.freshMachine()
        _ = machine.clientLineReceived(.line(SMTPLine("AUTH PLAIN \(Base64.encode(Array("\0alice\0pw".utf8)))")), more: false)
        let allowed = machine.verdictReceived(Decision(verdict: .allow))
        #expect(allowed.contains(.connectBackend))
        #expect(!allowed.contains(.authCredentialsSent))
        // The client goes before the link is up: nothing reached the backend.
        var gone = machine
        let closed = gone.clientClosed()
        #expect(closed.contains { if case .report(let attempt) = $0 { attempt.outcome == .abandoned } else { false } })
        _ = machine.backendConnected()
        _ = machine.backendReplyReceived(SMTPReply(code: 220, "backend"), clientWaiting: false)
        let up = machine.backendReplyReceived(SMTPReply(code: 250, lines: ["backend", "AUTH PLAIN LOGIN"]), clientWaiting: false)
        #expect(up.contains(.authCredentialsSent))

        var lacking = self.freshMachine()
        _ = lacking.clientLineReceived(.line(SMTPLine("AUTH PLAIN \(Base64.encode(Array("\0alice\0pw".utf8)))")), more: false)
        _ = lacking.verdictReceived(Decision(verdict: .allow))
        _ = lacking.backendConnected()
        _ = lacking.backendReplyReceived(SMTPReply(code: 220, "backend"), clientWaiting: false)
        let refused = lacking.backendReplyReceived(SMTPReply(code: 250, lines: ["backend", "AUTH LOGIN"]), clientWaiting: false)
        #expect(!refused.contains { if case .sendToBackend = $0 { true } else { false } })
        #expect(refused.contains { if case .report(let attempt) = $0 { attempt.outcome == .abandoned } else { false } })
        #expect(refused.contains { if case .sendToClient(let reply) = $0 { reply.code == 454 } else { false } })
        #expect(refused.contains { if case .log(.error, let text) = $0 { text.contains("AUTH PLAIN") } else { false } })
    }

    @Test("a client that goes away once its credentials are at the backend leaves an unverified guess; before, an abandoned attempt")
    func abandoned() {
        var machine = self.openedMachine()
        let asked = machine.clientLineReceived(.line(SMTPLine("AUTH PLAIN \(Base64.encode(Array("\0alice\0pw".utf8)))")), more: false)
        #expect(asked.contains { if case .decide(let attempt) = $0 { attempt.outcome == .pending } else { false } })
        let sent = machine.verdictReceived(Decision(verdict: .allow))
        #expect(sent.contains(.authCredentialsSent))
        let closed = machine.clientClosed()
        #expect(closed.contains { if case .report(let attempt) = $0 { attempt.outcome == .unverified } else { false } })
        #expect(closed.contains { if case .recordAttempt(let attempt, _, _) = $0 { attempt.outcome == .unverified } else { false } })

        // LOGIN: the username is at the backend, the password not yet: nothing was checked.
        var login = self.openedMachine()
        _ = login.clientLineReceived(.line(SMTPLine("AUTH LOGIN \(Base64.encode("alice"))")), more: false)
        _ = login.clientLineReceived(.line(SMTPLine(Base64.encode("pw"))), more: false)
        let first = login.verdictReceived(Decision(verdict: .allow))
        #expect(!first.contains(.authCredentialsSent))
        let gone = login.clientClosed()
        #expect(gone.contains { if case .report(let attempt) = $0 { attempt.outcome == .abandoned } else { false } })
    }

    @Test("while the backend owes the end-of-data reply, the client's idle timer rests")
    func idleRestsDuringDataEnd() {
        var machine = self.openedMachine()
        _ = machine.clientLineReceived(.line(SMTPLine("DATA")), more: false)
        _ = machine.backendReplyReceived(SMTPReply(code: 354, "go"), clientWaiting: false)
        _ = machine.clientLineReceived(.line(SMTPLine("Subject: x")), more: false)
        let end = machine.clientLineReceived(.line(SMTPLine(".")), more: false)
        #expect(end.contains(.cancelTimer(.clientIdle)))
        #expect(end.contains(.startTimer(.backendReply, .seconds(600))))
        let answered = machine.backendReplyReceived(SMTPReply(code: 250, "queued"), clientWaiting: false)
        #expect(answered.contains(.startTimer(.clientIdle, .seconds(300))))
    }

    @Test("a pipelining client may have at most 100 commands waiting for replies")
    func pipeliningBound() {
        var machine = self.openedMachine()
        var forwarded = 0
        for _ in 0..<150 where machine.wantsInput {
            forwarded += machine.clientLineReceived(.line(SMTPLine("RCPT TO:<b@example.org>")), more: false).filter { if case .sendToBackend = $0 { true } else { false } }.count
        }
        #expect(forwarded == SMTPSessionStateMachine.maxPipelined)
        #expect(!machine.wantsInput)
        _ = machine.backendReplyReceived(SMTPReply(code: 250, "ok"), clientWaiting: false)
        #expect(machine.wantsInput)
    }
}

@Suite("PROXY protocol headers from a load balancer")
struct ProxyHeaderTests {
    func parse(_ bytes: [UInt8]) -> Result<ProxyHeader.Parsed?, ProxyHeader.Malformed> {
        var buffer = ByteBuffer(bytes: bytes)
        do { return .success(try ProxyHeader.parse(&buffer)) } catch { return .failure(error) }
    }

    @Test("what the guard writes, it reads back, byte by byte or whole, with what follows left in place")
    func roundTrip() throws {
        let cases: [(IPAddress, IPAddress)] = [
            (IPAddress("203.0.113.9")!, IPAddress("192.0.2.25")!), (IPAddress("2001:db8::9")!, IPAddress("2001:db8::25")!),
        ]
        for (source, destination) in cases {
            let v1 = Array(ClientIdentity.proxyV1(source: source, sourcePort: 40000, destination: destination, destinationPort: 25).utf8)
            let v2 = Array(ClientIdentity.proxyV2(source: source, sourcePort: 40000, destination: destination, destinationPort: 25).readableBytesView)
            for header in [v1, v2] {
                let expected = ProxyHeader.Parsed.proxied(source: source, sourcePort: 40000, destination: destination, destinationPort: 25)
                var buffer = ByteBuffer(bytes: header + Array("EHLO x\r\n".utf8))
                #expect(try ProxyHeader.parse(&buffer) == expected)
                #expect(String(buffer: buffer) == "EHLO x\r\n")
                for cut in 1..<header.count {
                    var partial = ByteBuffer(bytes: header.prefix(cut))
                    #expect(try ProxyHeader.parse(&partial) == nil, "a header cut at \(cut) is not complete")
                    #expect(partial.readableBytes == cut)
                }
            }
        }
    }

    @Test("HAProxy on a dual-stack socket: TCP6 with IPv4-mapped addresses is the IPv4 client")
    func mapped() throws {
        var buffer = ByteBuffer(string: "PROXY TCP6 ::ffff:192.0.2.7 ::ffff:192.0.2.25 40000 25\r\n")
        #expect(
            try ProxyHeader.parse(&buffer)
                == .proxied(source: IPAddress("192.0.2.7")!, sourcePort: 40000, destination: IPAddress("192.0.2.25")!, destinationPort: 25))
        var v4WithV6 = ByteBuffer(string: "PROXY TCP4 2001:db8::1 192.0.2.25 40000 25\r\n")
        #expect(throws: ProxyHeader.Malformed.self) { try ProxyHeader.parse(&v4WithV6) }
    }

    @Test("LOCAL, UNKNOWN and malformed headers")
    func edges() throws {
        #expect(try self.parse(Array("PROXY UNKNOWN\r\n".utf8)).get() == .local)
        var local = ClientIdentity.proxyV2Signature + [0x20, 0x00, 0x00, 0x00]
        #expect(try self.parse(local).get() == .local)
        local[12] = 0x31  // version 3
        for bad in [
            Array("EHLO x\r\n".utf8), Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".utf8), Array("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n".utf8),
            Array("PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n".utf8), Array("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n".utf8),
            Array("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n".utf8), Array("PROXY \(String(repeating: "A", count: 120))".utf8), local,
            ClientIdentity.proxyV2Signature + [0x21, 0x11, 0x00, 0x04, 1, 2, 3, 4],
        ] {
            guard case .failure = self.parse(bad) else {
                Issue.record("accepted: \(bad)")
                continue
            }
        }
    }
}
