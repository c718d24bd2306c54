// Once a second, drops the bans that have run out, so that each is reported as an unban.

import GuardCore
import ServiceLifecycle

struct BanExpiryService: Service {
    let guardEngine: Guard
    var interval: Duration = .seconds(1)

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: self.interval)
                self.guardEngine.expireBans()
            }
        }
    }
}

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields (the
/// admin token, webhook secret, database URL and policy credentials live in them).
extension BanExpiryService: CustomStringConvertible {
    var description: String { "BanExpiryService" }
}
