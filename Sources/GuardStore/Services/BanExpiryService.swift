// Once a second, drops the bans that have run out, so that each is reported as an unban (and
// the unban reaches the state, the event log and the firewall). The engine's upkeep, here
// beside the state's services because GuardCore holds no services (Foundation only).

import GuardCore
import ServiceLifecycle

public struct BanExpiryService: Service {
    let guardEngine: Guard
    let interval: Duration

    public init(guardEngine: Guard, interval: Duration = .seconds(1)) {
        self.guardEngine = guardEngine
        self.interval = interval
    }

    public func run() async throws {
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
    public var description: String { "BanExpiryService" }
}
