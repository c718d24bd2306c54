// Dovecot's auth policy: the JSON it sends, pwhash, and the allow / report conversation.

import GuardCore
import Synchronization
import Testing

@testable import PolicyServers

final class Events: EventSink {
    private let store = Mutex<[GuardEvent]>([])
    func record(_ event: GuardEvent) { self.store.withLock { $0.append(event) } }
    var all: [GuardEvent] { self.store.withLock { $0 } }
    var attempts: [AttemptRecord] { self.all.compactMap { if case .attempt(let record) = $0 { return record } else { return nil } } }
    var alerts: [Alert] { self.all.compactMap { if case .alert(let alert) = $0 { return alert } else { return nil } } }
}

@Suite("Dovecot auth policy")
struct DovecotPolicyTests {
    let clock = ManualClock()
    let events = Events()

    func makePolicy(nonce: String = "", bits: Int = 12, _ configure: (inout GuardPolicy) -> Void = { _ in }) -> DovecotPolicy {
        var policy = GuardPolicy()
        policy.bans.jitter = 0
        configure(&policy)
        var configuration = DovecotPolicyConfiguration()
        configuration.hashNonce = nonce
        configuration.hashTruncate = bits
        return DovecotPolicy(guardEngine: Guard(policy: policy, clock: self.clock, events: self.events, seed: 1), events: self.events, configuration: configuration)
    }

    func request(_ login: String = "alice", from remote: String = "192.0.2.9", hash: String = "09d0", success: Bool? = nil, policyReject: Bool = false) -> DovecotPolicyRequest {
        var json = #"{"device_id":"","login":"\#(login)","protocol":"smtp","pwhash":"\#(hash)","remote":"\#(remote)","session_id":"","tls":false"#
        if let success { json += #","success":\#(success),"policy_reject":\#(policyReject)"# }
        json += "}"
        return try! DovecotPolicyRequest.parse(Array(json.utf8), report: success != nil)
    }

    @Test("the body Dovecot 2.3.19 sends is read; unknown attributes are ignored")
    func parse() throws {
        let body = #"{"device_id":"","login":"alice","protocol":"smtp","pwhash":"09d0","remote":"127.0.0.9","session_id":"","tls":false,"x-future":{"a":[1,2,{"b":null}]},"n":-1.5e3}"#
        let request = try DovecotPolicyRequest.parse(Array(body.utf8), report: false)
        #expect(request.login == "alice" && request.remote == IPAddress("127.0.0.9") && request.passwordHash == [0x09, 0xD0])
        #expect(request.protocolName == "smtp" && !request.tls && request.success == nil)
        let report = try DovecotPolicyRequest.parse(Array(#"{"login":"a\u00e9\ud83d\ude00","remote":"2001:db8::1","success":true,"policy_reject":false,"tls":"yes"}"#.utf8), report: true)
        #expect(report.login == "aé😀" && report.success == true && report.tls)
    }

    @Test(
        "malformed bodies and wrong types are errors that say what is wrong",
        arguments: [
            ("", "not a JSON object"),
            ("[1]", "not a JSON object"),
            (#"{"login":"alice""#, "not a JSON object"),
            (#"{"login":"alice","remote":"192.0.2.1",}"#, "not a JSON object"),
            (#"{"login":"x\u12"}"#, "not a JSON object"),
            (#"{"login":"\ud800","remote":"1.2.3.4"}"#, "not a JSON object"),
            (#"{"login":5,"remote":"192.0.2.1"}"#, #""login" must be a string, not a number"#),
            (#"{"login":"alice","remote":["192.0.2.1"]}"#, #""remote" must be a string"#),
            (#"{"login":"alice"}"#, #""remote" is missing"#),
            (#"{"login":"alice","remote":"not-an-ip"}"#, #""remote" is not an IP address"#),
            (#"{"login":"alice","remote":"192.0.2.1","pwhash":"xyz"}"#, #""pwhash" is not hexadecimal"#),
            (#"{"login":"alice","remote":"192.0.2.1","tls":3}"#, #""tls" must be true or false"#),
        ])
    func malformed(body: String, message: String) {
        #expect {
            try DovecotPolicyRequest.parse(Array(body.utf8), report: false)
        } throws: { error in
            (error as? DovecotPolicyError)?.message.contains(message) == true
        }
    }

    @Test("a report needs success")
    func reportNeedsSuccess() {
        #expect(throws: DovecotPolicyError.self) { try DovecotPolicyRequest.parse(Array(#"{"login":"a","remote":"192.0.2.1"}"#.utf8), report: true) }
    }

    @Test("pwhash is SHA-256(nonce ‖ login ‖ NUL ‖ password), its top bits right-aligned, as Dovecot computes it")
    func passwordHash() {
        // Reference values from Python's hashlib for nonce "nonce-1", alice / secret.
        #expect(DovecotPasswordHash(nonce: "nonce-1", bits: 12).hash(login: "alice", password: "secret") == [0x0A, 0x63])
        #expect(DovecotPasswordHash(nonce: "nonce-1", bits: 20).hash(login: "alice", password: "secret") == [0x0A, 0x63, 0x8C])
        #expect(DovecotPasswordHash(nonce: "nonce-1", bits: 32).hash(login: "alice", password: "secret") == [0xA6, 0x38, 0xC5, 0x1A])
        #expect(DovecotPasswordHash(nonce: "nonce-1", bits: 0).hash(login: "alice", password: "secret").count == 32)
    }

    @Test("allow, then report: a failure counts once; the tarpit becomes Dovecot's delay in whole seconds")
    func allowThenReport() {
        let policy = self.makePolicy {
            $0.tarpit.afterFailures = 1
            $0.tarpit.initial = .milliseconds(1500)
        }
        #expect(policy.allow(self.request(hash: "0001")) == .allow)
        #expect(policy.report(self.request(hash: "0001", success: false)) == .allow)
        #expect(policy.guardEngine.recentFailures(of: IPAddress("192.0.2.9")!) == 1)
        #expect(policy.guardEngine.inFlight(of: IPAddress("192.0.2.9")!) == 0)
        #expect(policy.allow(self.request(hash: "0002")).status == 2)
        #expect(self.events.attempts.map(\.attempt.outcome) == [.failure])
        #expect(self.events.attempts.first?.attempt.source == .dovecotPolicy)
    }

    @Test("the guard's own rejection is counted when made, not again when Dovecot reports it")
    func rejectionCountedOnce() {
        let policy = self.makePolicy { $0.limits.pairFailures = 2 }
        for i in 1...2 {
            _ = policy.allow(self.request(hash: "000\(i)"))
            _ = policy.report(self.request(hash: "000\(i)", success: false))
        }
        let answer = policy.allow(self.request(hash: "0003"))
        #expect(answer.status == -1)
        #expect(policy.report(self.request(hash: "0003", success: false, policyReject: true)) == .allow)
        #expect(policy.guardEngine.recentFailures(of: IPAddress("192.0.2.9")!) == 3)
        #expect(self.events.attempts.last?.decision.reasons.contains(.pairLimit) == true)
    }

    @Test("the after-authentication check: a good password is counted as a login once")
    func afterAuthentication() {
        let policy = self.makePolicy()
        #expect(policy.allow(self.request(hash: "abcd")) == .allow)
        #expect(policy.allow(self.request(hash: "abcd")) == .allow)  // after the passdb said yes
        #expect(policy.report(self.request(hash: "abcd", success: true)) == .allow)
        #expect(self.events.attempts.map(\.attempt.outcome) == [.success])
        #expect(policy.guardEngine.isKnownPlace(IPAddress("192.0.2.9")!, username: "alice"))
    }

    @Test("a default password: with 32 bits it fails the login at the after-authentication check and raises an alert")
    func weakCredential() {
        let nonce = "n0nce"
        let policy = self.makePolicy(nonce: nonce, bits: 32)
        let admin = Hex.string(DovecotPasswordHash(nonce: nonce, bits: 32).hash(login: "admin", password: "admin"))
        #expect(policy.allow(self.request("admin", hash: admin)) == .allow)
        #expect(policy.allow(self.request("admin", hash: admin)).status == -1)
        #expect(policy.report(self.request("admin", hash: admin, success: false, policyReject: true)) == .allow)
        #expect(self.events.attempts.first?.attempt.credential.isDefaultPassword == true)
        #expect(self.events.alerts.first?.kind == .weakCredentialAccepted)
        // A strong password goes through.
        #expect(policy.allow(self.request("alice", hash: "12345678")) == .allow)
        #expect(policy.allow(self.request("alice", hash: "12345678")) == .allow)
    }

    @Test("with 12 bits a default-password match only weighs a failure: it never fails a good login")
    func fewBitsOnlyWeigh() {
        let nonce = "n0nce"
        let policy = self.makePolicy(nonce: nonce, bits: 12)
        let hex = Hex.string(DovecotPasswordHash(nonce: nonce, bits: 12).hash(login: "admin", password: "admin"))
        _ = policy.allow(self.request("admin", hash: hex))
        #expect(policy.allow(self.request("admin", hash: hex)) == .allow)
        _ = policy.allow(self.request("admin", from: "192.0.2.10", hash: hex))
        _ = policy.report(self.request("admin", from: "192.0.2.10", hash: hex, success: false))
        #expect(self.events.attempts.last?.attempt.credential.isDefaultPassword == true)
    }

    @Test("the JSON answer")
    func answer() {
        #expect(DovecotPolicyAnswer(status: -1, message: "no \"way\"").json == #"{"status":-1,"msg":"no \"way\""}"#)
    }
}
