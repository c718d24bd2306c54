// The session machine's parts on their own: admission at connect, whose fault a timeout
// is, the replies in one place, the engine's answers kept apart from reports.

import GuardCore
import NIOCore
import Testing

@testable import SMTPWire

@Suite("Session parts: admission, timer blame, replies")
struct SessionPartsTests {
    let configuration = SessionConfiguration(.plainAuth, hasher: PasswordHasher(nonce: []))

    func admission(_ change: (inout ProxyConfiguration) -> Void = { _ in }) -> ConnectionAdmission {
        var proxy = ProxyConfiguration.plainAuth
        proxy.hostname = "mx.example.org"
        change(&proxy)
        return ConnectionAdmission(configuration: proxy, replies: SessionConfiguration(proxy, hasher: PasswordHasher(nonce: [])).replies)
    }

    func candidate(_ address: String = "203.0.113.9", implicitTLS: Bool = false, balancer: Bool = false) -> ConnectionAdmission.Candidate {
        ConnectionAdmission.Candidate(
            address: IPAddress(address)!, port: 40000, localAddress: IPAddress("192.0.2.25")!, localPort: 587, balancerItself: balancer,
            implicitTLS: implicitTLS)
    }

    static let ban = Ban(
        key: .ip(IPAddress("203.0.113.9")!), since: Timestamp(nanoseconds: 0), until: Timestamp(nanoseconds: 3_600_000_000_000),
        reason: .ipFailures, offense: 1)

    @Test("a full guard or a client at its limit is refused with 421 before the engine is asked; the limit is in the log")
    func capacity() {
        var asked = 0
        let full = self.admission().decide(self.candidate(), capacity: .full(limit: 7), ban: { asked += 1; return nil })
        guard case .refuse(let refusal) = full else { Issue.record("admitted: \(full)"); return }
        #expect(refusal.reply?.code == 421 && refusal.reply?.lines[0] == "4.7.0 mx.example.org Error: too many connections, try again later")
        #expect(refusal.level == .warning && refusal.message.contains("7 open"))
        let client = self.admission().decide(self.candidate(), capacity: .clientFull(limit: 3), ban: { asked += 1; return nil })
        guard case .refuse(let perClient) = client else { Issue.record("admitted: \(client)"); return }
        #expect(perClient.reply?.lines[0] == "4.7.0 mx.example.org Error: too many connections from your address")
        #expect(asked == 0)
        // The positive control: with room, the engine is asked and the client admitted.
        let room = self.admission().decide(self.candidate(), capacity: .available, ban: { asked += 1; return nil })
        #expect(asked == 1)
        #expect(room == .admit(ClientInfo(address: IPAddress("203.0.113.9")!, port: 40000, localAddress: IPAddress("192.0.2.25")!, localPort: 587, authAllowed: true)))
    }

    @Test("a banned client is refused at connect with 554 5.7.1, or 421 when ban_reply_code says so; the ban's scope and end are logged")
    func banned() {
        let refused = self.admission().decide(self.candidate(), capacity: .available, ban: { Self.ban })
        guard case .refuse(let refusal) = refused else { Issue.record("admitted: \(refused)"); return }
        #expect(refusal.reply == SMTPReply(code: 554, "5.7.1 mx.example.org Access denied"))
        #expect(refusal.metadata["guard.ban.scope"] == "ip" && refusal.metadata["guard.ban.until"] != nil)
        let later = self.admission { $0.banReplyCode = 421 }.decide(self.candidate(), capacity: .available, ban: { Self.ban })
        guard case .refuse(let temporary) = later else { Issue.record("admitted: \(later)"); return }
        #expect(temporary.reply == SMTPReply(code: 421, "4.7.0 mx.example.org Service not available, try again later"))
        // On an implicit TLS port nothing is said: no handshake is spent on a refused client.
        let tls = self.admission().decide(self.candidate(implicitTLS: true), capacity: .available, ban: { Self.ban })
        guard case .refuse(let quiet) = tls else { Issue.record("admitted: \(tls)"); return }
        #expect(quiet.reply == nil)
    }

    @Test("AUTH only inside auth_networks, and never for the load balancer's own health checks")
    func authAllowed() {
        let inside = self.admission { $0.authNetworks = NetworkList([IPNetwork("203.0.113.0/24")!]) }
        guard case .admit(let member) = inside.decide(self.candidate(), capacity: .available, ban: { nil }),
            case .admit(let outsider) = inside.decide(self.candidate("198.51.100.1"), capacity: .available, ban: { nil }),
            case .admit(let balancer) = inside.decide(self.candidate(balancer: true), capacity: .available, ban: { nil })
        else {
            Issue.record("refused")
            return
        }
        #expect(member.authAllowed)
        #expect(!outsider.authAllowed)
        #expect(!balancer.authAllowed)
    }

    /// A session in DATA: EHLO, MAIL, the link up, RCPT, DATA answered 354.
    func inData(minRate: Int) -> SMTPSessionStateMachine {
        var proxy = ProxyConfiguration.plainAuth
        proxy.dataMinRate = minRate
        var machine = SMTPSessionStateMachine(
            configuration: SessionConfiguration(proxy, hasher: PasswordHasher(nonce: [])),
            client: ClientInfo(address: IPAddress("192.0.2.1")!, port: 1, localAddress: IPAddress("192.0.2.2")!, localPort: 25, authAllowed: true))
        _ = machine.clientAdmitted()
        _ = machine.clientLineReceived(.line(SMTPLine("EHLO x")), more: false)
        _ = machine.clientLineReceived(.line(SMTPLine("MAIL FROM:<a@example.org>")), more: false)
        _ = machine.backendConnected()
        _ = machine.backendReplyReceived(SMTPReply(code: 220, "backend"), clientWaiting: false)
        _ = machine.backendReplyReceived(SMTPReply(code: 250, "backend"), clientWaiting: false)
        _ = machine.backendReplyReceived(SMTPReply(code: 250, "2.1.0 Ok"), clientWaiting: false)
        _ = machine.clientLineReceived(.line(SMTPLine("RCPT TO:<b@example.org>")), more: false)
        _ = machine.backendReplyReceived(SMTPReply(code: 250, "2.1.5 Ok"), clientWaiting: false)
        _ = machine.clientLineReceived(.line(SMTPLine("DATA")), more: false)
        let started = machine.backendReplyReceived(SMTPReply(code: 354, "go ahead"), clientWaiting: false)
        #expect(started.contains(.startTimer(.dataRate, ProxyConfiguration.dataRateInterval)) == (minRate > 0))
        return machine
    }

    @Test("a slow DATA is the client's fault only while the backend takes what it is sent")
    func dataRateBlame() {
        var excused = self.inData(minRate: 1000)
        let held = excused.timerFired(.dataRate, backendWritable: false)
        #expect(held == [.startTimer(.dataRate, ProxyConfiguration.dataRateInterval)])
        #expect(!excused.isClosed)
        // The positive control: the same session with the backend keeping up is cut off.
        var slow = self.inData(minRate: 1000)
        let cut = slow.timerFired(.dataRate, backendWritable: true)
        #expect(cut.contains(.sendToClient(self.configuration.replies.dataTooSlow)))
        #expect(slow.isClosed)
    }

    @Test("a backend reply held back because the client does not read is the client's stall, not the backend's failure")
    func replyTimeoutBlame() {
        var stalled = self.inData(minRate: 0)
        _ = stalled.clientLineReceived(.line(SMTPLine(".")), more: false)
        let idle = stalled.timerFired(.backendReply, clientWritable: false)
        #expect(idle.contains(.sendToClient(self.configuration.replies.idleTimeout)))
        #expect(!idle.contains { if case .backendFailed = $0 { true } else { false } })
        // The positive control: a client that reads, and a backend that does not answer.
        var waiting = self.inData(minRate: 0)
        _ = waiting.clientLineReceived(.line(SMTPLine(".")), more: false)
        let failed = waiting.timerFired(.backendReply, clientWritable: true)
        #expect(failed.contains(.sendToClient(self.configuration.replies.backendUnavailable)))
        #expect(failed.contains { if case .backendFailed(let reason) = $0 { reason.contains("did not answer") } else { false } })
    }

    @Test("every reply of the guard's own is one line with a valid code and no CR or LF; the greeting and endings name the host")
    func replies() {
        var proxy = ProxyConfiguration.plainAuth
        proxy.hostname = "mx.example.org"
        let replies = SessionConfiguration(proxy, hasher: PasswordHasher(nonce: [])).replies
        let all = Mirror(reflecting: replies).children.compactMap { child in (child.value as? SMTPReply).map { (child.label ?? "?", $0) } }
        #expect(all.count >= 50, "\(all.count) replies found")
        for (name, reply) in all {
            #expect((200..<600).contains(reply.code), "\(name): \(reply.code)")
            #expect(reply.lines.count == 1 && !reply.lines[0].contains(where: { $0 == "\r" || $0 == "\n" }), "\(name)")
            if reply.code >= 400 && name != "authFailed" && name != "authTempFailed" {
                // RFC 3463: an enhanced status code whose class matches the reply's.
                let status = reply.lines[0].split(separator: " ").first ?? ""
                #expect(status.hasPrefix("\(reply.code / 100).") && status.split(separator: ".").count == 3, "\(name): \(reply.lines[0])")
            }
        }
        for reply in [replies.idleTimeout, replies.serviceNotAvailable, replies.backendUnavailable, replies.bannedPermanent] {
            #expect(reply.lines[0].contains("mx.example.org"))
        }
    }
}
