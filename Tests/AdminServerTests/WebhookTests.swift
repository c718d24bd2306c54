import AdminServer
import Crypto
import Foundation
import GuardCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// What the loopback receiver saw.
final class Received: Sendable {
    struct Delivery: Sendable {
        var timestamp: String
        var signature: String
        var id: String
        var body: String
    }

    let deliveries = Mutex<[Delivery]>([])
    /// Answer 500 to the first N requests.
    let failFirst: Int
    let seen = Atomic<Int>(0)

    init(failFirst: Int) { self.failFirst = failFirst }
}

@Suite struct WebhookTests {
    static let secret = "webhook-secret-for-tests"

    func receiver(_ received: Received) -> some ApplicationProtocol {
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            let count = received.seen.add(1, ordering: .relaxed).newValue
            received.deliveries.withLock {
                $0.append(
                    .init(
                        timestamp: request.headers[HTTPField.Name("X-SMTPGuard-Timestamp")!] ?? "",
                        signature: request.headers[HTTPField.Name("X-SMTPGuard-Signature")!] ?? "",
                        id: request.headers[HTTPField.Name("X-SMTPGuard-Delivery")!] ?? "", body: String(buffer: body)))
            }
            return Response(status: count <= received.failFirst ? .internalServerError : .ok)
        }
        return Application(router: router)
    }

    func alert(_ n: Int) -> Alert {
        Alert(kind: .weakCredentialAccepted, severity: .critical, time: Timestamp(seconds: 1_800_000_000 + Int64(n)), username: "admin", client: IPAddress("192.0.2.\(n)"), message: "weak credential accepted for admin (\(n))")
    }

    @Test func signedRetriedAndFoldedIntoADigest() async throws {
        let received = Received(failFirst: 1)
        try await self.receiver(received).test(.live) { client in
            let port = try #require(client.port)
            var configuration = AlertsConfiguration()
            configuration.webhooks = ["http://127.0.0.1:\(port)/hook"]
            configuration.webhookSecret = Self.secret
            configuration.digestInterval = .seconds(1)
            let service = AlertService(
                configuration: configuration, clock: SystemClock(), logger: Logger(label: "test"), tickInterval: .milliseconds(50),
                backoffUnit: .milliseconds(100))
            let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                for n in 1...21 { service.record(.alert(self.alert(n))) }
                // The first at once (after one retry: the receiver fails it once), the other 20
                // folded into one digest when the 1 s window closes.
                let deadline = ContinuousClock.now + .seconds(10)
                while received.deliveries.withLock({ $0.count }) < 3 && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(50))
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
        let deliveries = received.deliveries.withLock { $0 }
        #expect(deliveries.count == 3, "one failed try, its retry, one digest")
        #expect(deliveries[0].id == deliveries[1].id && deliveries[1].id != deliveries[2].id, "a retry keeps its delivery id")
        for delivery in deliveries {
            let expected = "sha256=" + Hex.string(Array(HMAC<SHA256>.authenticationCode(for: Array("\(delivery.timestamp).\(delivery.body)".utf8), using: SymmetricKey(data: Array(Self.secret.utf8)))))
            #expect(delivery.signature == expected)
            #expect(!delivery.body.contains(Self.secret))
        }
        let first = try #require(JSONSerialization.jsonObject(with: Data(deliveries[1].body.utf8)) as? [String: Any])
        #expect(first["type"] as? String == "alert" && first["message"] as? String == "weak credential accepted for admin (1)")
        let digest = try #require(JSONSerialization.jsonObject(with: Data(deliveries[2].body.utf8)) as? [String: Any])
        #expect(digest["type"] as? String == "digest" && digest["count"] as? Int == 20)
        #expect((digest["alerts"] as? [[String: Any]])?.count == 20)
    }

    @Test func aReceiverThatIsDownNeverHoldsUpRecording() async throws {
        var configuration = AlertsConfiguration()
        configuration.webhooks = ["http://127.0.0.1:9/hook"]  // nothing listens on the discard port
        configuration.webhookSecret = Self.secret
        configuration.webhookRetries = 50
        let service = AlertService(configuration: configuration, clock: SystemClock(), logger: Logger(label: "test"), tickInterval: .milliseconds(50))
        let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let began = ContinuousClock.now
            for n in 1...1000 { service.record(.alert(self.alert(n % 200))) }
            #expect(ContinuousClock.now - began < .seconds(1), "recording only hands the alert over")
            try await Task.sleep(for: .milliseconds(300))
            let stop = ContinuousClock.now
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            #expect(ContinuousClock.now - stop < .seconds(5), "retries stop at shutdown")
        }
    }
}
