// `/api/events`: the recent events (filtered), or, with `follow=1` or `Accept:
// text/event-stream`, server-sent events: the backlog asked for, then each event as it
// happens. Trusts the token check before it; talks only to the in-memory feed. The stream
// sends the event log's own lines; a follower that cannot keep up loses the oldest.

import GuardCore
import HTTPTypes
import Hummingbird
import NIOCore

struct EventsRoutes: Sendable {
    let feed: EventFeed
    let clock: any GuardClock
    /// How often a stream says it is alive when nothing happens.
    let heartbeat: Duration

    var collection: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.get { request, context in try self.events(request, context: context) }
        return routes
    }

    func events(_ request: Request, context: AdminRequestContext) throws -> Response {
        let query = try Query(request, allowed: ["kind", "client", "username", "since", "after", "limit", "follow"])
        var filter = FeedFilter()
        filter.kinds = try query.set("kind", allowed: EventFeed.kinds)
        if let client = query["client"] {
            guard let address = IPAddress(client) else { throw APIError.badRequest("client: \"\(client.logSafe)\" is not an IP address") }
            filter.client = address
        }
        filter.username = query["username"]
        filter.since = try query.time("since", now: self.clock.now())
        filter.afterID = try query.optionalInt("after", range: 0...Int.max)
        let limit = try query.int("limit", default: 100, range: 1...1000)
        let follow = try query.bool("follow") || request.headers[.accept]?.contains("text/event-stream") == true
        if follow {
            if filter.afterID == nil, let last = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap({ Int($0) }) { filter.afterID = last }
            return self.stream(filter, backlog: filter.afterID != nil || filter.since != nil ? limit : 0)
        }
        let entries = self.feed.entries(filter, limit: limit)
        let list = EventList(nextID: self.feed.nextID, events: try entries.map { try EventRecord(line: $0.json, id: $0.id) })
        return try list.response(from: request, context: context)
    }

    /// The event's JSON with its feed id first.
    static func withID(_ entry: FeedEntry) -> String {
        "{\"id\":\(entry.id)," + entry.json.dropFirst()
    }

    /// Server-sent events: the backlog asked for, then each new event as it happens, with a
    /// comment line every `heartbeat` so that a dead reader is noticed.
    func stream(_ filter: FeedFilter, backlog: Int) -> Response {
        let feed = self.feed
        let heartbeat = self.heartbeat
        // Following starts before the backlog is read: nothing falls between the two.
        let live = feed.follow()
        let earlier = backlog > 0 ? feed.entries(filter, limit: backlog) : []
        let body = ResponseBody { writer in
            enum Item: Sendable {
                case entry(FeedEntry)
                case beat
            }
            let (items, continuation) = AsyncStream<Item>.makeStream(bufferingPolicy: .bufferingNewest(4096))
            var lastID = earlier.last?.id ?? (filter.afterID ?? 0)
            try await writer.write(ByteBuffer(string: ": smtpguard events\nretry: 2000\n\n"))
            for entry in earlier { try await writer.write(ByteBuffer(string: Self.sse(entry))) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await entry in live { continuation.yield(.entry(entry)) }
                    continuation.finish()
                }
                group.addTask {
                    while !Task.isCancelled {
                        try await Task.sleep(for: heartbeat)
                        continuation.yield(.beat)
                    }
                }
                defer { group.cancelAll() }
                for await item in items {
                    switch item {
                    case .entry(let entry):
                        guard entry.id > lastID, filter.matches(entry) else { continue }
                        lastID = entry.id
                        try await writer.write(ByteBuffer(string: Self.sse(entry)))
                    case .beat:
                        try await writer.write(ByteBuffer(string: ": alive\n\n"))
                    }
                }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: body)
    }

    static func sse(_ entry: FeedEntry) -> String {
        "id: \(entry.id)\nevent: \(entry.kind)\ndata: \(Self.withID(entry))\n\n"
    }
}
