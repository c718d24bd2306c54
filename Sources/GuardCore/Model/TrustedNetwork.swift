// A trusted network an operator added at run time (the admin API, `smtpguard trusted add`).
// Those of the configuration file (`guard.trusted_networks`) are not of this kind: the file
// is their record.

public struct TrustedNetwork: Sendable, Hashable {
    public var network: IPNetwork
    /// Why it is trusted, in the operator's words (may be empty).
    public var comment: String
    public var added: Timestamp

    public init(network: IPNetwork, comment: String, added: Timestamp) {
        self.network = network
        self.comment = comment
        self.added = added
    }
}
