// Trusted networks on the admin API: `GET /api/trusted`, `POST /api/trusted`,
// `DELETE /api/trusted/{network}`. Plain values, no I/O.

import GuardStore
import Hummingbird

public struct TrustedNetworkRecord: ResponseEncodable, Decodable, Sendable, Equatable {
    public var network: String
    /// `configuration` (the file's, read-only here) or `api` (added, kept in the state).
    public var origin: String
    public var comment: String
    /// When it was added (RFC 3339); absent for the configuration's.
    public var added: String?

    public init(_ entry: TrustedNetworkBook.Entry) {
        self.network = entry.network.description
        self.origin = entry.origin.rawValue
        self.comment = entry.comment
        self.added = entry.added?.iso8601
    }
}

public struct TrustedNetworkList: ResponseEncodable, Decodable, Sendable, Equatable {
    public var networks: [TrustedNetworkRecord]

    public init(networks: [TrustedNetworkRecord]) { self.networks = networks }
}

/// The answer to a removal: the network no longer trusted.
public struct TrustedNetworkRemoval: ResponseEncodable, Decodable, Sendable, Equatable {
    public var removed: String

    public init(removed: String) { self.removed = removed }
}

/// The body of `POST /api/trusted`.
public struct TrustedNetworkRequest: Codable, Sendable {
    public var network: String
    public var comment: String?

    public init(network: String, comment: String? = nil) {
        self.network = network
        self.comment = comment
    }
}
