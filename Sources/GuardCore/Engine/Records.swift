// The compact per-key records the engine keeps. Sizes matter: a million attacking
// addresses must fit in a few hundred megabytes (see BENCHMARKS.md).

/// One (client, username) pair's recent failures and the passwords they used.
struct PairEntry {
    var user: UInt32 = 0
    var lastFailure: UInt32 = 0
    var failures: UInt16 = 0
    /// Truncated password hashes already seen failing for this pair (UInt16.max = empty).
    var hashes = InlineArray<3, UInt16>(repeating: .max)

    func hasSeen(_ hash: UInt16) -> Bool {
        for i in 0..<3 where self.hashes[i] == hash { return true }
        return false
    }

    mutating func remember(_ hash: UInt16) {
        self.hashes[2] = self.hashes[1]
        self.hashes[1] = self.hashes[0]
        self.hashes[0] = hash
    }
}

/// Per client address (IPv6 grouped by its /64).
struct ClientRecord {
    var failuresShort = FailureWindow()
    var failuresLong = FailureWindow()
    var attempts = FailureWindow()
    /// The three usernames this client failed on most recently.
    var pairs = InlineArray<3, PairEntry>(repeating: PairEntry())
    /// Distinct usernames that failed from here in the long window, exact up to eight.
    var users = InlineArray<8, UInt32>(repeating: 0)
    var userCount: UInt16 = 0
    var usersSince: UInt32 = 0
    /// Attempts allowed and not yet reported back (they run in parallel connections).
    var inFlight: UInt16 = 0
    var inFlightSince: UInt32 = 0
    /// When an attempt was last told to try again later because the client asked for more
    /// checks than its budget had room for (parallel or too many); 0: never.
    var lastTurnedAway: UInt32 = 0

    /// In-flight attempts, forgetting any a source never reported back within `stale` seconds.
    mutating func currentInFlight(now: UInt32, stale: UInt32) -> Int {
        if self.inFlight > 0 && now &- self.inFlightSince > stale { self.inFlight = 0 }
        return Int(self.inFlight)
    }

    func pairIndex(_ user: UInt32) -> Int? {
        for i in 0..<3 where self.pairs[i].failures > 0 && self.pairs[i].user == user { return i }
        return nil
    }

    /// The pair entry for `user`, replacing the least recently failed one when new.
    mutating func pairSlot(_ user: UInt32) -> Int {
        if let i = self.pairIndex(user) { return i }
        var victim = 0
        for i in 1..<3 where self.pairs[i].lastFailure < self.pairs[victim].lastFailure { victim = i }
        self.pairs[victim] = PairEntry()
        self.pairs[victim].user = user
        return victim
    }

    /// Counts `user` as a distinct failing username; returns the distinct count.
    mutating func noteUser(_ user: UInt32, now: UInt32, window: UInt32) -> Int {
        if now &- self.usersSince > window || now < self.usersSince {
            self.userCount = 0
            self.usersSince = now
        }
        let known = min(Int(self.userCount), 8)
        for i in 0..<known where self.users[i] == user { return Int(self.userCount) }
        // Past eight, the oldest remembered name makes room (the count keeps growing).
        self.users[Int(self.userCount % 8)] = user
        self.userCount &+= 1
        return Int(self.userCount)
    }
}

/// Per network prefix (/24, /48 by default).
struct PrefixRecord {
    var failuresShort = FailureWindow()
    var failuresLong = FailureWindow()
    /// Distinct client addresses that failed here in the long window (hashes), kept up to
    /// `guard.limits.prefix_min_clients`: a prefix is banned only for several of them.
    var clients = InlineArray<8, UInt32>(repeating: 0)
    var clientCount: UInt8 = 0
    var clientsSince: UInt32 = 0

    static let clientsKept = 8

    /// Counts `client` as a distinct failing address (up to `cap`); returns the distinct count.
    mutating func noteClient(_ client: UInt32, now: UInt32, window: UInt32, cap: Int) -> Int {
        if now &- self.clientsSince > window || now < self.clientsSince {
            self.clientCount = 0
            self.clientsSince = now
        }
        let known = Int(self.clientCount)
        for i in 0..<known where self.clients[i] == client { return known }
        guard known < min(cap, Self.clientsKept) else { return known }
        self.clients[known] = client
        self.clientCount += 1
        return known + 1
    }
}

/// Per normalised username.
struct UserRecord {
    var failuresShort = FailureWindow()
    var failuresLong = FailureWindow()
    /// Distinct failing clients in the long window (hashes), kept up to the limit + 1.
    var clients: [UInt32] = []
    var clientsSince: UInt32 = 0

    mutating func noteClient(_ client: UInt32, now: UInt32, window: UInt32, cap: Int) -> Int {
        if now &- self.clientsSince > window || now < self.clientsSince {
            self.clients.removeAll(keepingCapacity: true)
            self.clientsSince = now
        }
        if self.clients.count < cap && !self.clients.contains(client) { self.clients.append(client) }
        return self.clients.count
    }
}

/// A (place, username) pair where the user logged in: a client address or a prefix.
struct PlaceKey: Hashable {
    var place: IPAddress
    var isPrefix: Bool
    var user: String
}

/// Past bans of one key, for escalation.
struct OffenseRecord {
    var count: UInt16
    var last: UInt32
}

/// FNV-1a, 32 bits: a stable hash for compact references (same result in every process).
@inline(__always)
func fnv1a<S: Sequence<UInt8>>(_ bytes: S) -> UInt32 {
    var hash: UInt32 = 2_166_136_261
    for byte in bytes {
        hash ^= UInt32(byte)
        hash &*= 16_777_619
    }
    return hash
}

extension IPAddress {
    var stableHash: UInt32 {
        var h: UInt32 = 2_166_136_261
        for shift in stride(from: 56, through: 0, by: -8) {
            h ^= UInt32(truncatingIfNeeded: self.high >> UInt64(shift)); h &*= 16_777_619
        }
        for shift in stride(from: 56, through: 0, by: -8) {
            h ^= UInt32(truncatingIfNeeded: self.low >> UInt64(shift)); h &*= 16_777_619
        }
        return h
    }
}
