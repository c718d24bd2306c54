// The recent events, in memory, for `GET /api/events` and the dashboard's live feed: a ring of
// the last `admin.event_buffer` events, each with a sequence number, and the followers that
// get every new one as it happens (server-sent events). Recording never waits: a follower
// that cannot keep up loses the oldest of what it has not read, and is told how many.

import GuardCore
import Synchronization

/// One event as the feed keeps it, with its sequence number. Its JSON is made when it is
/// read, not when it is recorded: recording is on the engine's hot path, reading is rare.
public struct FeedEntry: Sendable {
    public var id: Int
    public var event: GuardEvent

    public var json: String { self.event.jsonLine }

    public var time: Timestamp {
        switch self.event {
        case .attempt(let record): return record.attempt.time
        case .ban(let ban): return ban.since
        case .unban(_, let time, _): return time
        case .alert(let alert): return alert.time
        case .sending(let record): return record.request.time
        }
    }

    public var kind: String {
        switch self.event {
        case .attempt: return "auth"
        case .ban: return "ban"
        case .unban: return "unban"
        case .alert: return "alert"
        case .sending: return "sending"
        }
    }

    public var client: IPAddress? {
        switch self.event {
        case .attempt(let record): return record.attempt.client
        case .ban(let ban), .unban(let ban, _, _): return ban.key.address
        case .alert(let alert): return alert.client
        case .sending(let record): return record.request.client
        }
    }

    public var username: String {
        switch self.event {
        case .attempt(let record): return record.attempt.username
        case .ban(let ban), .unban(let ban, _, _): return ban.key.username ?? ""
        case .alert(let alert): return alert.username
        case .sending(let record): return record.request.username
        }
    }
}

/// What a reader wants: kinds, a client, a username, events after an id or a time.
public struct FeedFilter: Sendable {
    public var kinds: Set<String> = []
    public var client: IPAddress?
    public var username: String?
    public var afterID: Int?
    public var since: Timestamp?

    public init() {}

    public func matches(_ entry: FeedEntry) -> Bool {
        if let afterID, entry.id <= afterID { return false }
        if let since, entry.time < since { return false }
        if !self.kinds.isEmpty && !self.kinds.contains(entry.kind) { return false }
        if let client, entry.client != client { return false }
        if let username, entry.username.lowercased() != username.lowercased() { return false }
        return true
    }
}

public final class EventFeed: EventSink, Sendable {
    public let capacity: Int
    private let state: Mutex<State>

    struct State {
        var ring: [FeedEntry] = []
        var start = 0
        var nextID = 1
        var followers: [Int: AsyncStream<FeedEntry>.Continuation] = [:]
        var nextFollower = 0
        var closed = false
    }

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        var state = State()
        state.ring.reserveCapacity(min(self.capacity, 65_536))
        self.state = Mutex(state)
    }

    public func record(_ event: GuardEvent) {
        var entry = FeedEntry(id: 0, event: event)
        let followers = self.state.withLock { state -> [AsyncStream<FeedEntry>.Continuation] in
            entry.id = state.nextID
            state.nextID += 1
            if state.ring.count < self.capacity {
                state.ring.append(entry)
            } else {
                state.ring[state.start] = entry
                state.start = (state.start + 1) % self.capacity
            }
            return Array(state.followers.values)
        }
        for follower in followers { follower.yield(entry) }
    }

    /// Kept events that pass the filter, oldest first; at most `limit`, the newest of them.
    public func entries(_ filter: FeedFilter, limit: Int) -> [FeedEntry] {
        self.state.withLock { state in
            var found: [FeedEntry] = []
            let count = state.ring.count
            // Newest first, so that a limit keeps the newest; reversed at the end.
            for offset in stride(from: count - 1, through: 0, by: -1) {
                let entry = state.ring[(state.start + offset) % count]
                if let afterID = filter.afterID, entry.id <= afterID { break }
                if filter.matches(entry) {
                    found.append(entry)
                    if found.count >= limit { break }
                }
            }
            return found.reversed()
        }
    }

    /// The id the next event will have.
    public var nextID: Int { self.state.withLock { $0.nextID } }

    /// Every event from now on, until `close()` or the reader stops reading. `buffer` events
    /// wait for a slow reader; past that the oldest unread are dropped.
    public func follow(buffer: Int = 4096) -> AsyncStream<FeedEntry> {
        let (stream, continuation) = AsyncStream<FeedEntry>.makeStream(bufferingPolicy: .bufferingNewest(buffer))
        let id: Int? = self.state.withLock { state in
            guard !state.closed else { return nil }
            let id = state.nextFollower
            state.nextFollower += 1
            state.followers[id] = continuation
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.followers.removeValue(forKey: id) }
        }
        return stream
    }

    public var followerCount: Int { self.state.withLock { $0.followers.count } }

    /// Ends every follower's stream (at shutdown); later followers end at once.
    public func close() {
        let followers = self.state.withLock { state -> [AsyncStream<FeedEntry>.Continuation] in
            state.closed = true
            defer { state.followers.removeAll() }
            return Array(state.followers.values)
        }
        for follower in followers { follower.finish() }
    }

    public static let kinds: Set<String> = ["auth", "ban", "unban", "alert", "sending"]
}

extension BanKey {
    /// The address of an IP ban.
    var address: IPAddress? {
        if case .ip(let address) = self { return address }
        return nil
    }

    var username: String? {
        if case .username(let name) = self { return name }
        return nil
    }
}
