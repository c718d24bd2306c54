// How the stores write the model into rows and read it back: one place for every store, so
// SQLite and PostgreSQL agree on what a ban, an attempt and a key look like when stored.

import GuardCore

extension BanKey {
    /// The key as stored: an address, a network, or a username.
    var storeText: String {
        switch self {
        case .ip(let address): return address.description
        case .prefix(let network): return network.description
        case .username(let name): return name
        }
    }

    init?(scope: BanScope, text: String) {
        switch scope {
        case .ip:
            guard let address = IPAddress(text) else { return nil }
            self = .ip(address)
        case .prefix:
            guard let network = IPNetwork(text) else { return nil }
            self = .prefix(network)
        case .username:
            self = .username(text)
        }
    }
}

extension Timestamp {
    /// Milliseconds since the epoch, as stored.
    var milliseconds: Int { Int(self.nanoseconds / 1_000_000) }
    init(milliseconds: Int) { self.init(nanoseconds: Int64(milliseconds) * 1_000_000) }
}

extension Ban {
    init?(scope: String, key: String, reason: String, since: Int, until: Int, offense: Int, exempt: Bool) {
        guard let scope = BanScope(rawValue: scope), let key = BanKey(scope: scope, text: key), let reason = Reason(rawValue: reason) else { return nil }
        self.init(
            key: key, since: Timestamp(milliseconds: since), until: Timestamp(milliseconds: until), reason: reason, offense: offense,
            exemptKnownPlaces: exempt)
    }
}

extension AuthAttempt {
    init?(row: (Int, String, Int?, String, String, Bool, String?, String, String, Bool)) {
        let (time, client, port, username, mechanism, tls, version, outcome, source, isDefault) = row
        guard let address = IPAddress(client), let outcome = AuthOutcome(rawValue: outcome), let source = AttemptSource(rawValue: source) else { return nil }
        self.init(
            time: Timestamp(milliseconds: time), client: address, clientPort: port.map { UInt16(clamping: $0) }, username: username,
            mechanism: AuthMechanism(name: mechanism), tls: tls, tlsVersion: version, outcome: outcome, source: source,
            credential: CredentialEvidence(passwordHash: nil, isDefaultPassword: isDefault))
    }
}

extension Alert {
    init?(time: Int, kind: String, severity: String, username: String?, client: String?, message: String) {
        guard let kind = Alert.Kind(rawValue: kind), let severity = Alert.Severity(rawValue: severity) else { return nil }
        self.init(
            kind: kind, severity: severity, time: Timestamp(milliseconds: time), username: username ?? "", client: client.flatMap { IPAddress($0) },
            message: message)
    }
}
