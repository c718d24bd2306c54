// Every AUTH the engine allows is taken "in flight" until its outcome is reported back.
// However an AUTH ends, the count must come back to zero, or a client would be throttled
// for attempts it no longer makes.

import GuardCore
import NIOCore
import Testing

@testable import SMTPWire

@Suite("In-flight AUTH accounting")
struct InFlightBalanceTests {
    static let client = "203.0.113.5"

    func plain(_ user: String, _ password: String) -> String {
        "AUTH PLAIN " + Base64.encode(Array("\0\(user)\0\(password)".utf8))
    }

    func settled(_ driver: SessionDriver, _ note: Comment) {
        #expect(driver.guardEngine.inFlight(of: IPAddress(Self.client)!) == 0, note)
    }

    @Test("success, failure, temporary failure and a weak credential all land")
    func outcomes() {
        for (user, password) in [("alice", "secret"), ("alice", "wrong"), ("busy", "x"), ("admin", "admin")] {
            var driver = SessionDriver(client: Self.client)
            driver.start()
            driver.client("EHLO x\r\n\(self.plain(user, password))\r\n")
            self.settled(driver, "\(user)")
            #expect(driver.records.count == 1)
        }
    }

    @Test("a backend asking for the LOGIN username again gets the username, never the password, and the attempt lands")
    func loginAskedAgain() {
        var driver = SessionDriver(client: Self.client)
        driver.backend.ignoreLoginInitialResponse = true
        driver.start()
        driver.client("EHLO x\r\nAUTH LOGIN \(Base64.encode("alice"))\r\n\(Base64.encode("secret"))\r\n")
        let sent = driver.transcript.filter { $0.hasPrefix("B< ") }
        #expect(sent.suffix(3) == ["B< AUTH LOGIN YWxpY2U=", "B< YWxpY2U=", "B< c2VjcmV0"])
        #expect(driver.transcript.contains("S: 235 2.7.0 Authentication successful"))
        self.settled(driver, "login")
    }

    @Test("an AUTH step the guard does not know is cancelled and lands")
    func unexpectedChallenge() {
        var driver = SessionDriver(client: Self.client)
        driver.backend.unexpectedChallenge = true
        driver.start()
        driver.client("EHLO x\r\n\(self.plain("alice", "secret"))\r\n")
        #expect(driver.transcript.contains("B< *"))
        #expect(driver.transcript.contains("S: 535 5.7.8 Authentication credentials invalid"))
        self.settled(driver, "334")
    }

    @Test("a client leaving while the backend checks, or while it waits in the tarpit, lands")
    func clientLeaves() {
        var atBackend = SessionDriver(client: Self.client)
        atBackend.backend.silentOnAuth = true
        atBackend.start()
        atBackend.client("EHLO x\r\n\(self.plain("alice", "pw1"))\r\n")
        #expect(atBackend.guardEngine.inFlight(of: IPAddress(Self.client)!) == 1)
        atBackend.clientGoesAway()
        self.settled(atBackend, "client left at the backend")

        var policy = GuardPolicy()
        policy.tarpit.afterFailures = 0
        var inTarpit = SessionDriver(policy: policy, client: Self.client)
        inTarpit.autoFireTarpit = false
        inTarpit.start()
        inTarpit.client("EHLO x\r\n\(self.plain("alice", "pw2"))\r\n")
        #expect(inTarpit.guardEngine.inFlight(of: IPAddress(Self.client)!) == 1)
        inTarpit.clientGoesAway()
        self.settled(inTarpit, "client left in the tarpit")
    }

    /// A session whose AUTH is at a backend that does not answer.
    func authAtSilentBackend() -> SessionDriver {
        var driver = SessionDriver(client: Self.client)
        driver.backend.silentOnAuth = true
        driver.start()
        driver.client("EHLO x\r\n\(self.plain("alice", "pw"))\r\n")
        return driver
    }

    @Test("a backend that dies or hangs mid-AUTH: the attempt lands")
    func backendTrouble() {
        var closes = self.authAtSilentBackend()
        closes.backendGoesAway()
        self.settled(closes, "backend closed")
        #expect(closes.transcript.contains { $0.hasPrefix("S: 421 4.3.0") })

        var hangs = self.authAtSilentBackend()
        hangs.fire(.backendReply)
        self.settled(hangs, "backend timed out")
    }

    @Test("guessing until banned leaves nothing in flight")
    func banned() {
        var driver = SessionDriver(client: Self.client)
        driver.start()
        driver.client("EHLO x\r\n" + (1...6).map { self.plain("alice", "guess\($0)") + "\r\n" }.joined())
        #expect(driver.closed)
        self.settled(driver, "banned")
    }

    @Test("command verbs of every length")
    func verbs() {
        #expect(SMTPCommand(line: ByteBuffer(string: "STARTTLS"))?.verb == .startTLS)  // 8 letters
        #expect(SMTPCommand(line: ByteBuffer(string: "XFORWARD ADDR=1.2.3.4"))?.verb == .xforward)
        #expect(SMTPCommand(line: ByteBuffer(string: "STARTTLSX"))?.verb == .other)  // 9 letters
        #expect(SMTPCommand(line: ByteBuffer(string: "ABCDEFGHIJKLMNOP"))?.verb == .other)  // 16
        #expect(SMTPCommand(line: ByteBuffer(string: "ABCDEFGHIJKLMNOPQ")) == nil)  // 17
        #expect(SMTPCommand(line: ByteBuffer(string: " AUTH PLAIN x")) == nil)
        #expect(SMTPCommand(line: ByteBuffer(string: "AUTH\tPLAIN")) == nil)
        #expect(SMTPCommand(line: ByteBuffer(string: "MAIL "))?.argument == "")
        #expect(SMTPCommand(line: ByteBuffer(string: "mail FROM:<a@b>"))?.verb == .mail)
        #expect(SMTPCommand(line: ByteBuffer(string: "mail FROM:<a@b>"))?.argument == "FROM:<a@b>")
        #expect(SMTPLine(wire: ByteBuffer(string: "x")).content.readableBytes == 0)
    }
}
