// Counts open client connections, in total and per client address, for the connection
// limits; keeps the open channels so that a shutdown can close what is left after draining.

import GuardCore
import NIOCore
import Synchronization

public final class ConnectionRegistry: Sendable {
    public enum Admission: Equatable, Sendable {
        case admitted
        case tooManyTotal
        case tooManyFromClient
    }

    private struct State {
        var total = 0
        var perClient: [IPAddress: Int] = [:]
        var channels: [ObjectIdentifier: any Channel] = [:]
    }

    private let state = Mutex(State())
    public let maxTotal: Int
    public let maxPerClient: Int

    public init(maxTotal: Int, maxPerClient: Int) {
        self.maxTotal = maxTotal
        self.maxPerClient = maxPerClient
    }

    public func admit(_ address: IPAddress, channel: any Channel) -> Admission {
        self.state.withLock { state in
            if state.total >= self.maxTotal { return .tooManyTotal }
            let current = state.perClient[address, default: 0]
            if current >= self.maxPerClient { return .tooManyFromClient }
            state.total += 1
            state.perClient[address] = current + 1
            state.channels[ObjectIdentifier(channel)] = channel
            return .admitted
        }
    }

    public func release(_ address: IPAddress, channel: any Channel) {
        self.state.withLock { state in
            guard state.channels.removeValue(forKey: ObjectIdentifier(channel)) != nil else { return }
            state.total -= 1
            let remaining = state.perClient[address, default: 1] - 1
            state.perClient[address] = remaining > 0 ? remaining : nil
        }
    }

    public var openConnections: Int { self.state.withLock { $0.total } }

    public func openChannels() -> [any Channel] { self.state.withLock { Array($0.channels.values) } }
}
