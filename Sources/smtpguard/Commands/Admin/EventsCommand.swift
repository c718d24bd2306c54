// `smtpguard events`: a running guard's recent events, or its live stream (`--follow`),
// through its admin API (AdminClient). One line per event for people; --json prints the
// API's JSON (with --follow, each event's line as the guard sent it).

import AdminServer
import ArgumentParser
import Foundation

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Recent events of a running guard (AUTH attempts, bans, alerts), or follow them live.")
    @OptionGroup var options: AdminOptions
    @Flag(name: [.short, .long], help: "Keep printing events as they happen (until interrupted or the guard stops).") var follow = false
    @Option(help: "Only these kinds, comma-separated: auth, ban, unban, alert, sending.") var kind: String?
    @Option(help: "Only this client address.") var client: String?
    @Option(help: "Only this username.") var username: String?
    @Option(help: "Since a time (2026-11-23T10:00:00Z) or this long ago (15m).") var since: String?
    @Option(help: "At most this many earlier events (1-1000).") var limit = 50

    func run() async throws {
        let client = try self.options.client()
        let query = AdminClient.EventQuery(kind: self.kind, client: self.client, username: self.username, since: self.since, limit: self.limit)
        if self.follow {
            try await client.followEvents(query) { event in
                if self.options.json {
                    print(event.text)
                } else if let record = try? event.value() {
                    print(Self.line(record))
                }
                fflush(nil)
            }
            return
        }
        let answer = try await client.events(query)
        if self.options.json { return print(answer.text, terminator: "") }
        let events = try answer.value().events
        if events.isEmpty { return print("no events") }
        for event in events { print(Self.line(event)) }
    }

    /// One event as a line for people.
    static func line(_ e: EventRecord) -> String {
        let time = AdminText.time(e.time)
        func s(_ value: String?) -> String { value ?? "" }
        func n(_ value: Int?) -> String { value.map(String.init) ?? "" }
        switch e.event {
        case "auth":
            let delay = e.delayMilliseconds.map { $0 > 0 ? " delay \($0)ms" : "" } ?? ""
            return "\(time)  auth    \(s(e.clientIP))  \(s(e.username))  \(s(e.mechanism)) \(s(e.outcome)) → \(s(e.decision))\(delay)  [\(s(e.source))]"
        case "ban":
            return "\(time)  ban     \(s(e.scope)) \(s(e.key)) until \(AdminText.time(e.until)) (\(s(e.reason)), offence \(n(e.offense)))"
        case "unban":
            return "\(time)  unban   \(s(e.scope)) \(s(e.key)) (\(s(e.why)))"
        case "alert":
            return "\(time)  ALERT   \(s(e.kind)) [\(s(e.severity))]: \(s(e.message))"
        case "sending":
            return "\(time)  sending \(s(e.username)) \(s(e.counts)) \(s(e.decision)) \(s(e.limit))"
        default:
            return "\(time)  \(e.event)"
        }
    }
}
