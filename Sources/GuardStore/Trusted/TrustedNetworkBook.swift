// Trusted networks: those of the configuration file (read-only here) and those an operator
// added through the API, which are kept in the state (so they outlive a restart) and handed
// to the engine at once. On PostgreSQL the other guards read them again when told (ClusterSync).

import GuardCore

public actor TrustedNetworkBook {
    public enum Origin: String, Sendable {
        case configuration
        case api
    }

    public struct Entry: Sendable, Equatable {
        public var network: IPNetwork
        public var origin: Origin
        public var comment: String
        public var added: Timestamp?

        public init(network: IPNetwork, origin: Origin, comment: String, added: Timestamp?) {
            self.network = network
            self.origin = origin
            self.comment = comment
            self.added = added
        }
    }

    public enum Removal: Sendable, Equatable {
        case removed
        case notFound
        /// It is in the configuration file: only editing the file removes it.
        case configured
    }

    let configured: [IPNetwork]
    let store: (any StateStore)?
    let guardEngine: Guard
    private var added: [TrustedNetwork] = []
    /// Local adds and removes so far (a reload that crossed one reads again later).
    private var changes = 0

    public init(configured: [IPNetwork], store: (any StateStore)?, guardEngine: Guard) {
        self.configured = configured
        self.store = store
        self.guardEngine = guardEngine
    }

    /// Reads the added networks from the state and gives them to the engine (at start).
    public func load() async throws {
        guard let store else { return }
        self.added = try await self.stored(in: store)
        self.apply()
    }

    /// Reads the added networks from the state again (another guard changed them); what
    /// came and went, for the log. Nothing changes when the state cannot be read.
    public func reload() async throws -> (added: [IPNetwork], removed: [IPNetwork]) {
        guard let store else { return ([], []) }
        let changes = self.changes
        let stored = try await self.stored(in: store)
        // An add or remove here while the state was read: the list read may be older than it.
        guard changes == self.changes else { return ([], []) }
        let before = Set(self.added.map(\.network))
        let after = Set(stored.map(\.network))
        self.added = stored
        guard before != after else { return ([], []) }
        self.apply()
        return (stored.map(\.network).filter { !before.contains($0) }, before.filter { !after.contains($0) }.sorted { $0.description < $1.description })
    }

    /// The added networks in the state, less those the configuration file has anyway.
    private func stored(in store: any StateStore) async throws -> [TrustedNetwork] {
        try await store.trustedNetworks().filter { !self.configured.contains($0.network) }
    }

    public func entries() -> [Entry] {
        self.configured.map { Entry(network: $0, origin: .configuration, comment: "", added: nil) }
            + self.added.map { Entry(network: $0.network, origin: .api, comment: $0.comment, added: $0.added) }
    }

    /// Adds (or re-comments) a network: stored first, then trusted by the engine.
    public func add(_ network: IPNetwork, comment: String, now: Timestamp) async throws -> Entry {
        if self.configured.contains(network) {
            return Entry(network: network, origin: .configuration, comment: "", added: nil)
        }
        let entry = TrustedNetwork(network: network, comment: comment, added: self.added.first { $0.network == network }?.added ?? now)
        try await self.store?.addTrustedNetwork(entry)
        self.changes += 1
        self.added.removeAll { $0.network == network }
        self.added.append(entry)
        self.apply()
        return Entry(network: network, origin: .api, comment: comment, added: entry.added)
    }

    public func remove(_ network: IPNetwork) async throws -> Removal {
        if self.configured.contains(network) { return .configured }
        // Another guard may have added it since this one last read the state.
        let stored = try await self.store?.removeTrustedNetwork(network) ?? false
        self.changes += 1
        guard stored || self.added.contains(where: { $0.network == network }) else { return .notFound }
        self.added.removeAll { $0.network == network }
        self.apply()
        return .removed
    }

    private func apply() {
        self.guardEngine.setAddedTrustedNetworks(self.added.map(\.network))
    }
}
