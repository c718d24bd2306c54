// Postfix's policy delegation: the request lines, and what the guard answers.

import GuardCore
import Testing

@testable import PolicyServers

@Suite("Postfix policy")
struct PostfixPolicyTests {
    let clock = ManualClock()

    func lines(_ text: String, max: Int = 2048) throws(PostfixPolicyError) -> [PostfixPolicyRequest] {
        var decoder = PostfixPolicyDecoder(maxRequestSize: max)
        var requests: [PostfixPolicyRequest] = []
        for line in Array(text.utf8).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast() {
            if let request = try decoder.line(line) { requests.append(request) }
        }
        return requests
    }

    @Test("requests end at an empty line; CRLF is taken; unknown attributes are kept and ignored; one connection carries several")
    func decode() throws {
        let requests = try self.lines("request=smtpd_access_policy\r\nprotocol_state=RCPT\nfuture=1\nhelo_name=a=b\n\nrequest=smtpd_access_policy\nprotocol_state=connect\n\n")
        #expect(requests.count == 2)
        #expect(requests[0].state == "RCPT" && requests[0]["helo_name"] == "a=b" && requests[0]["future"] == "1")
        #expect(requests[1].state == "CONNECT")
    }

    @Test(
        "protocol errors",
        arguments: [
            ("protocol_state=RCPT\n\n", "without request="),
            ("request=junk\n\n", "unknown request="),
            ("\n", "empty request"),
            ("request=smtpd_access_policy\nno equals sign\n\n", "not name=value"),
            ("request=smtpd_access_policy\n=value\n\n", "not name=value"),
        ])
    func errors(text: String, message: String) {
        #expect {
            try self.lines(text)
        } throws: { error in
            (error as? PostfixPolicyError)?.message.contains(message) == true
        }
    }

    @Test("a request over the size limit is an error")
    func size() {
        #expect(throws: PostfixPolicyError.self) { try self.lines("request=smtpd_access_policy\nhelo_name=\(String(repeating: "h", count: 600))\n\n", max: 512) }
    }

    func makePolicy(_ configure: (inout GuardPolicy) -> Void = { _ in }) -> PostfixPolicy {
        var policy = GuardPolicy()
        policy.trustedNetworks = NetworkList([IPNetwork("10.0.0.0/8")!])
        configure(&policy)
        return PostfixPolicy(guardEngine: Guard(policy: policy, clock: self.clock, seed: 1), configuration: PostfixPolicyConfiguration())
    }

    func ask(_ policy: PostfixPolicy, _ attributes: [String: String]) -> String {
        policy.answer(PostfixPolicyRequest(attributes.merging(["request": "smtpd_access_policy"]) { a, _ in a }))
    }

    @Test("a banned client gets the ban action at every stage; others, and trusted networks, DUNNO")
    func bans() {
        let policy = self.makePolicy()
        policy.guardEngine.placeBan(.ip(IPAddress("192.0.2.66")!), duration: .seconds(600))
        policy.guardEngine.placeBan(.prefix(IPNetwork("10.1.2.0/24")!), duration: .seconds(600))
        for state in ["CONNECT", "EHLO", "MAIL", "RCPT"] {
            #expect(self.ask(policy, ["protocol_state": state, "client_address": "192.0.2.66"]).hasPrefix("421 4.7.0 "), "\(state)")
        }
        #expect(self.ask(policy, ["protocol_state": "CONNECT", "client_address": "192.0.2.67"]) == "DUNNO")
        #expect(self.ask(policy, ["protocol_state": "CONNECT", "client_address": "10.1.2.3"]) == "DUNNO")
        #expect(self.ask(policy, ["protocol_state": "CONNECT", "client_address": "unknown"]) == "DUNNO")
    }

    @Test("recipients are counted once per RCPT even when Postfix asks twice; the limit defers with DEFER_IF_PERMIT")
    func recipients() {
        let policy = self.makePolicy { $0.sending.defaults.recipientsPerMinute = 3 }
        var answers: [String] = []
        for i in 0..<5 {
            let rcpt = ["protocol_state": "RCPT", "client_address": "192.0.2.5", "sasl_username": "alice", "instance": "7f.1", "recipient_count": "\(min(i, 3))", "recipient": "r\(i)@example.net"]
            answers.append(self.ask(policy, rcpt))
            answers.append(self.ask(policy, rcpt))  // the same RCPT from a second restriction list
        }
        #expect(answers.prefix(6).allSatisfy { $0 == "DUNNO" })
        #expect(answers[6].hasPrefix("DEFER_IF_PERMIT Sending limit reached for this account (3 recipients per minute)"))
        // Without sasl_username nothing is counted.
        #expect(self.ask(policy, ["protocol_state": "RCPT", "client_address": "192.0.2.5", "instance": "x", "recipient": "a@b"]) == "DUNNO")
    }

    @Test("asked only at END-OF-MESSAGE, the message and its recipient_count are counted there")
    func endOfMessage() {
        let policy = self.makePolicy { $0.sending.defaults.recipientsPerHour = 10 }
        let eom = ["protocol_state": "END-OF-MESSAGE", "client_address": "192.0.2.5", "sasl_username": "bob", "recipient_count": "6"]
        #expect(self.ask(policy, eom.merging(["instance": "a"]) { _, b in b }) == "DUNNO")
        #expect(self.ask(policy, eom.merging(["instance": "b"]) { _, b in b }).hasPrefix("DEFER_IF_PERMIT "))
    }

    @Test("a locked account may not start mail")
    func locked() {
        let policy = self.makePolicy()
        policy.guardEngine.placeBan(.username("carol"), duration: .seconds(600), reason: .sendingLimit)
        #expect(self.ask(policy, ["protocol_state": "MAIL", "client_address": "192.0.2.5", "sasl_username": "Carol"]).hasPrefix("DEFER_IF_PERMIT This account is locked"))
    }
}
