import AdminServer
import Crypto
import GuardCore
import Testing

@Suite struct AlertFolderTests {
    func alert(_ kind: Alert.Kind, _ at: Int64, _ user: String = "admin") -> Alert {
        Alert(kind: kind, severity: .critical, time: Timestamp(seconds: at), username: user, client: nil, message: "\(kind.rawValue) \(user) at \(at)")
    }

    @Test func firstGoesOutAtOnceTheRestAsOneDigestPerInterval() {
        var folder = AlertFolder(interval: .seconds(900))
        #expect(folder.receive(self.alert(.weakCredentialAccepted, 0), now: Timestamp(seconds: 0)) == [.single(self.alert(.weakCredentialAccepted, 0))])
        // 20 more within the interval: nothing goes out yet.
        for i in 1...20 {
            #expect(folder.receive(self.alert(.weakCredentialAccepted, Int64(i * 30)), now: Timestamp(seconds: Int64(i * 30))).isEmpty)
        }
        #expect(folder.pending == 20)
        #expect(folder.tick(now: Timestamp(seconds: 899)).isEmpty)
        let digests = folder.tick(now: Timestamp(seconds: 900))
        #expect(digests.count == 1)
        guard case .digest(let kind, let count, let since, _, let alerts) = digests[0] else {
            Issue.record("expected a digest")
            return
        }
        #expect(kind == .weakCredentialAccepted && count == 20 && since == Timestamp(seconds: 30) && alerts.count == 20)
        // The window goes on after a digest; an empty window closes, and the next alert is sent at once.
        #expect(folder.tick(now: Timestamp(seconds: 1800)).isEmpty)
        #expect(folder.receive(self.alert(.weakCredentialAccepted, 1801), now: Timestamp(seconds: 1801)).count == 1)
    }

    @Test func kindsAreFoldedApartAndZeroIntervalSendsEach() {
        var folder = AlertFolder(interval: .seconds(60))
        #expect(folder.receive(self.alert(.possibleCompromise, 0), now: Timestamp(seconds: 0)).count == 1)
        #expect(folder.receive(self.alert(.distributedAttack, 1), now: Timestamp(seconds: 1)).count == 1)
        #expect(folder.receive(self.alert(.possibleCompromise, 2), now: Timestamp(seconds: 2)).isEmpty)
        #expect(folder.flush(now: Timestamp(seconds: 3)).count == 1)
        var each = AlertFolder(interval: .zero)
        for i in 0..<3 { #expect(each.receive(self.alert(.attackVolume, Int64(i)), now: Timestamp(seconds: Int64(i))).count == 1) }
    }

    @Test func digestJSONListsTheFoldedAlerts() {
        let delivery = AlertDelivery.digest(
            kind: .possibleCompromise, count: 2, since: Timestamp(seconds: 0), until: Timestamp(seconds: 60),
            alerts: [self.alert(.possibleCompromise, 0, "a\"b"), self.alert(.possibleCompromise, 1)])
        let json = delivery.json
        #expect(json.hasPrefix(#"{"type":"digest","kind":"possible_compromise","severity":"critical","count":2"#))
        #expect(json.contains(#""username":"a\"b""#))
    }

    @Test func hmacMatchesRFC4231() {
        // RFC 4231 test case 2.
        let mac = HMAC<SHA256>.authenticationCode(for: Array("what do ya want for nothing?".utf8), using: SymmetricKey(data: Array("Jefe".utf8)))
        #expect(Hex.string(Array(mac)) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        let sig = WebhookSender.signature(secret: Array("Jefe".utf8), timestamp: 1, body: "x")
        #expect(sig == "sha256=" + Hex.string(Array(HMAC<SHA256>.authenticationCode(for: Array("1.x".utf8), using: SymmetricKey(data: Array("Jefe".utf8))))))
    }
}
