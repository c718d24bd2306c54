// Alert webhooks: a JSON POST per alert or digest, signed so the receiver can tell it came
// from this guard and was not replayed. The headers:
//   X-SMTPGuard-Timestamp: seconds since 1970
//   X-SMTPGuard-Signature: sha256=HEX(HMAC-SHA256(alerts.webhook_secret, TIMESTAMP "." BODY))
//   X-SMTPGuard-Delivery: an id, the same on every retry of one delivery
// A delivery that fails (no connection, a timeout, a 5xx, 408 or 429) is tried again after
// 1 s, 2 s, 4 s … (at most a minute), `alerts.webhook_retries` times; other 4xx answers are
// final. The secret never appears in a log line.

import Crypto
import GuardCore
import Logging
import NIOCore

public struct WebhookSender: Sendable {
    public let url: HTTPURL
    let secret: [UInt8]
    public let timeout: Duration
    public let retries: Int
    /// The first wait between tries (tests shorten it).
    public var backoffUnit: Duration = .seconds(1)

    public init(url: HTTPURL, secret: String, timeout: Duration, retries: Int) {
        self.url = url
        self.secret = Array(secret.utf8)
        self.timeout = timeout
        self.retries = retries
    }

    /// The signature header's value for a body sent at `timestamp`.
    public static func signature(secret: [UInt8], timestamp: Int64, body: String) -> String {
        "sha256=" + Hex.string(Array(HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).\(body)".utf8), using: SymmetricKey(data: secret))))
    }

    public enum Result: Sendable, Equatable {
        case delivered(attempts: Int)
        case failed(attempts: Int, reason: String)
    }

    /// Delivers `body`, retrying as described above; `stopping` ends the retries early (at
    /// shutdown: the attempt under way finishes, no further one starts).
    public func deliver(body: String, id: String, clock: any GuardClock, stopping: @Sendable () -> Bool, logger: Logger) async -> Result {
        var attempt = 0
        var lastReason = ""
        while true {
            attempt += 1
            let timestamp = clock.now().nanoseconds / 1_000_000_000
            let headers = [
                ("Content-Type", "application/json"),
                ("X-SMTPGuard-Timestamp", String(timestamp)),
                ("X-SMTPGuard-Signature", Self.signature(secret: self.secret, timestamp: timestamp, body: body)),
                ("X-SMTPGuard-Delivery", id),
            ]
            var final = false
            do {
                let response = try await HTTPClient.send(
                    .POST, self.url, headers: headers, body: ByteBuffer(string: body), timeout: self.timeout, maxBody: 65_536)
                if (200..<300).contains(response.status) { return .delivered(attempts: attempt) }
                lastReason = "answered \(response.status)"
                final = (400..<500).contains(response.status) && response.status != 408 && response.status != 429
            } catch {
                lastReason = "\(error)"
            }
            if final || attempt > self.retries || stopping() { return .failed(attempts: attempt, reason: lastReason) }
            logger.info("alert webhook \(self.url.hostHeader): \(lastReason); trying again", metadata: ["delivery": .string(id)])
            let wait = Self.backoff(afterAttempt: attempt, unit: self.backoffUnit)
            // Wait in small steps so that a shutdown is not held up by a long backoff.
            var waited = Duration.zero
            while waited < wait && !stopping() {
                let step = min(.milliseconds(100), wait - waited)
                try? await Task.sleep(for: step)
                waited += step
            }
            if stopping() { return .failed(attempts: attempt, reason: lastReason) }
        }
    }

    /// `unit` (1 s) after the first failure, then doubling, at most 60 units.
    public static func backoff(afterAttempt attempt: Int, unit: Duration = .seconds(1)) -> Duration {
        unit * min(60, 1 << min(attempt - 1, 6))
    }
}
