// The proxy counts what an authenticated client sends: MAIL and RCPT are held until the
// guard has counted them, and past a limit they are answered by the guard (451 / 452).

import GuardCore
import Testing

@testable import SMTPWire

@Suite("Sending limits in the proxy")
struct SendingLimitTests {
    static let login = "AUTH PLAIN " + Base64.encode(Array("\0alice\0secret".utf8))

    func driver(_ configure: (inout GuardPolicy) -> Void) -> SessionDriver {
        var policy = GuardPolicy()
        configure(&policy)
        var driver = SessionDriver(policy: policy)
        driver.start()
        return driver
    }

    func replies(_ driver: SessionDriver) -> [String] { driver.transcript.filter { $0.hasPrefix("S: ") } }

    @Test("past the recipient limit RCPT gets 452 4.5.3 from the guard and never reaches the backend, even pipelined")
    func recipients() {
        var driver = self.driver { $0.sending.defaults.recipientsPerMinute = 2 }
        driver.client("EHLO x\r\n\(Self.login)\r\n")
        driver.client("MAIL FROM:<alice@example.org>\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n")
        let toBackend = driver.transcript.filter { $0.hasPrefix("B< RCPT") }
        #expect(toBackend.count == 2)
        #expect(self.replies(driver).contains { $0.hasPrefix("S: 452 4.5.3 Sending limit reached for this account (2 recipients per minute)") })
        #expect(driver.transcript.contains("# sending refused alice 2 recipients per minute"))
        // Replies stay in command order: 250, 250, 250, 452, then DATA's.
        let codes = self.replies(driver).suffix(5).map { String($0.dropFirst(3).prefix(3)) }
        #expect(codes == ["250", "250", "250", "452", "354"])
    }

    @Test("past the message limit MAIL gets 451 4.7.1; its RCPTs are not counted")
    func messages() {
        var driver = self.driver {
            $0.sending.defaults.messagesPerMinute = 1
            $0.sending.defaults.recipientsPerMinute = 2
        }
        driver.client("EHLO x\r\n\(Self.login)\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<a@x.test>\r\nRSET\r\n")
        driver.client("MAIL FROM:<alice@example.org>\r\nRCPT TO:<b@x.test>\r\nRSET\r\n")
        #expect(self.replies(driver).contains { $0.hasPrefix("S: 451 4.7.1 Sending limit reached for this account (1 messages per minute)") })
        // The refused transaction's RCPT went to the backend uncounted: one more recipient fits.
        driver.clock.advance(by: .seconds(61))
        driver.client("MAIL FROM:<alice@example.org>\r\nRCPT TO:<c@x.test>\r\nRCPT TO:<d@x.test>\r\n")
        #expect(driver.transcript.filter { $0.hasPrefix("B< RCPT") }.count == 4)
    }

    @Test("a client that has not authenticated is not counted")
    func unauthenticated() {
        var driver = self.driver { $0.sending.defaults.recipientsPerMinute = 1 }
        driver.client("EHLO x\r\nMAIL FROM:<x@y.test>\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n")
        #expect(driver.transcript.filter { $0.hasPrefix("B< RCPT") }.count == 2)
    }

    @Test("with lock_account the account is locked: its next AUTH is refused and it may not send")
    func lock() {
        var driver = self.driver {
            $0.sending.defaults.recipientsPerMinute = 1
            $0.sending.lockAccount = true
        }
        driver.client("EHLO x\r\n\(Self.login)\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRSET\r\nMAIL FROM:<alice@example.org>\r\n")
        #expect(self.replies(driver).last?.hasPrefix("S: 451 4.7.1 This account is locked") == true)
        #expect(driver.guardEngine.sendingLock(for: "alice") != nil)
        var second = SessionDriver(guardEngine: driver.guardEngine, clock: driver.clock)
        second.start()
        second.client("EHLO x\r\n\(Self.login)\r\n")
        #expect(second.records.last?.2.verdict == .refuse)
    }
}
