// What the guards of one PostgreSQL database tell each other on the notification channel
// (PostgresStateStore.notifyChannel), as text: a ban, a ban lifted, the trusted networks
// changed. Written by PostgresStateStore inside the transaction that stores the change (so it
// goes out at COMMIT); read by ClusterSync, which trusts only what parses.

import GuardCore

/// What goes over the notification channel: a ban, a ban lifted, or the trusted networks
/// changed (the others read them again).
public enum ClusterMessage: Sendable, Equatable {
    case ban(Ban, guard: String)
    case lift(BanKey, guard: String)
    case trustedNetworks(guard: String)

    /// Fields separated by tabs (none of them can hold one).
    public var text: String {
        switch self {
        case .ban(let ban, let guardID):
            return ["ban", guardID, ban.key.scope.rawValue, ban.key.storeText, ban.reason.rawValue, "\(ban.since.milliseconds)",
                "\(ban.until.milliseconds)", "\(ban.offense)", ban.exemptKnownPlaces ? "1" : "0"].joined(separator: "\t")
        case .lift(let key, let guardID):
            return ["lift", guardID, key.scope.rawValue, key.storeText].joined(separator: "\t")
        case .trustedNetworks(let guardID):
            return ["trusted", guardID].joined(separator: "\t")
        }
    }

    public init?(text: String) {
        let fields = text.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard fields.count >= 2 else { return nil }
        switch fields[0] {
        case "ban":
            guard fields.count == 9, let since = Int(fields[5]), let until = Int(fields[6]), let offense = Int(fields[7]),
                let ban = Ban(scope: fields[2], key: fields[3], reason: fields[4], since: since, until: until, offense: offense, exempt: fields[8] == "1")
            else { return nil }
            self = .ban(ban, guard: fields[1])
        case "lift":
            guard fields.count == 4, let scope = BanScope(rawValue: fields[2]), let key = BanKey(scope: scope, text: fields[3]) else { return nil }
            self = .lift(key, guard: fields[1])
        case "trusted":
            guard fields.count == 2 else { return nil }
            self = .trustedNetworks(guard: fields[1])
        default:
            return nil
        }
    }

    public var guardID: String {
        switch self {
        case .ban(_, let id), .lift(_, let id), .trustedNetworks(let id): return id
        }
    }
}
