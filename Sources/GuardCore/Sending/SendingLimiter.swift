// SendingLimiter: counts what each authenticated user sends (messages, recipients) in a
// minute, an hour and a day, refuses what would go past a limit, and raises one alert per
// user and interval when that happens. A pure value like GuardEngine: time comes in the
// requests; `Guard` wraps it in a lock.

/// An authenticated user wants to start a message or add recipients.
public struct SendingRequest: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case message
        case recipients(Int)
    }

    public var time: Timestamp
    /// The authenticated username (normalised by the guard).
    public var username: String
    public var client: IPAddress?
    public var kind: Kind
    public var source: AttemptSource

    public init(time: Timestamp, username: String, client: IPAddress?, kind: Kind, source: AttemptSource) {
        self.time = time
        self.username = username
        self.client = client
        self.kind = kind
        self.source = source
    }

    public var counts: SendingCount {
        if case .message = self.kind { return .messages }
        return .recipients
    }

    public var amount: Int {
        switch self.kind {
        case .message: return 1
        case .recipients(let count): return max(0, count)
        }
    }
}

/// The limit a request would have gone past.
public struct SendingExcess: Sendable, Hashable {
    public var counts: SendingCount
    public var window: SendingWindow
    public var limit: Int
    /// What the user had sent in the window before this request.
    public var sent: Int
    /// Distinct client addresses the user sent from in the window.
    public var addresses: Int

    /// "500 recipients per hour".
    public var limitText: String {
        let per = ["minute", "hour", "day"][self.window.rawValue]
        return "\(self.limit) \(self.counts.rawValue) per \(per)"
    }
}

/// The answer to a SendingRequest.
public struct SendingDecision: Sendable, Hashable {
    public var allowed: Bool
    /// The limit that refused the request.
    public var excess: SendingExcess?
    /// The lock that refused it, or that this request caused.
    public var lock: Ban?
    public var alert: Alert?

    public init(allowed: Bool, excess: SendingExcess? = nil, lock: Ban? = nil, alert: Alert? = nil) {
        self.allowed = allowed
        self.excess = excess
        self.lock = lock
        self.alert = alert
    }

    public static let allow = SendingDecision(allowed: true)

    /// Words for the reply to the client (no code): why it may not send now.
    public var text: String {
        if let excess {
            let locked = self.lock != nil ? "; the account is locked until the postmaster unlocks it" : "; try again later"
            return "Sending limit reached for this account (\(excess.limitText))\(locked)"
        }
        if self.lock != nil { return "This account is locked; contact the postmaster" }
        return "OK"
    }
}

public struct SendingLimiter {
    public let policy: SendingPolicy
    private let clocks: [WindowClock]
    private var users: LRUTable<String, UserSending>
    /// Addresses remembered per user, for the alert's "from K addresses".
    static let addressesKept = 32

    public init(policy: SendingPolicy, capacity: Int = 100_000) {
        self.policy = policy
        self.clocks = SendingWindow.allCases.map { WindowClock(window: $0.duration) }
        self.users = LRUTable(capacity: capacity)
    }

    public var trackedUsers: Int { self.users.count }

    /// Counts the request if it stays inside every limit of its user; otherwise refuses it
    /// and says which limit, with an alert when none was raised for the user lately.
    /// `username` is the normalised name.
    public mutating func check(_ request: SendingRequest, username: String) -> SendingDecision {
        let limits = self.policy.limits(for: username)
        let seconds = request.time.seconds
        let clocks = self.clocks
        let counts = request.counts
        let amount = request.amount
        let alertSeconds = UInt32(clamping: self.policy.alertInterval.wholeSeconds)
        let (result, _) = self.users.update(username, make: UserSending.init) { record -> (SendingExcess?, Bool) in
            if let client = request.client { record.saw(client, at: seconds) }
            var excess: SendingExcess?
            for window in SendingWindow.allCases {
                let limit = limits.limit(counts, window)
                guard limit > 0 else { continue }
                let sent = record.windows[record.index(counts, window)].total(slot: clocks[window.rawValue].slot(seconds))
                if sent + amount > limit {
                    excess = SendingExcess(
                        counts: counts, window: window, limit: limit, sent: sent,
                        addresses: record.addresses(since: seconds &- UInt32(clamping: window.duration.wholeSeconds)))
                    break
                }
            }
            guard let excess else {
                for window in SendingWindow.allCases {
                    record.windows[record.index(counts, window)].add(UInt32(clamping: amount), slot: clocks[window.rawValue].slot(seconds))
                }
                return (nil, false)
            }
            let alert = record.lastAlert == 0 || seconds &- record.lastAlert >= alertSeconds
            if alert { record.lastAlert = max(1, seconds) }
            return (excess, alert)
        }
        guard let excess = result.0 else { return .allow }
        var decision = SendingDecision(allowed: false, excess: excess)
        if result.1 {
            let minutes = excess.window.minutes
            let addresses = excess.addresses
            decision.alert = Alert(
                kind: .possibleCompromise, severity: .critical, time: request.time, username: username, client: request.client,
                message: "possible compromised account: \(username) sent \(excess.sent) \(excess.counts.rawValue) in \(minutes) minute\(minutes == 1 ? "" : "s") "
                    + "from \(addresses) address\(addresses == 1 ? "" : "es") (limit \(excess.limitText))")
        }
        return decision
    }
}

/// What one user sent: messages and recipients in each window, and from where.
struct UserSending {
    /// messages minute, hour, day; recipients minute, hour, day.
    var windows = [SlidingWindow<UInt32>](repeating: SlidingWindow<UInt32>(), count: 6)
    var clients: [(address: IPAddress, lastSeen: UInt32)] = []
    var lastAlert: UInt32 = 0

    init() {}

    func index(_ counts: SendingCount, _ window: SendingWindow) -> Int {
        (counts == .messages ? 0 : 3) + window.rawValue
    }

    mutating func saw(_ address: IPAddress, at seconds: UInt32) {
        if let i = self.clients.firstIndex(where: { $0.address == address }) {
            self.clients[i].lastSeen = seconds
            return
        }
        if self.clients.count >= SendingLimiter.addressesKept, let oldest = self.clients.indices.min(by: { self.clients[$0].lastSeen < self.clients[$1].lastSeen }) {
            self.clients.remove(at: oldest)
        }
        self.clients.append((address, seconds))
    }

    func addresses(since seconds: UInt32) -> Int {
        self.clients.reduce(0) { $0 + ($1.lastSeen >= seconds ? 1 : 0) }
    }
}
