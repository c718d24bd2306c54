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
