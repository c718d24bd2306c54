// Writes events as JSON lines to a file (appending) or to standard output, and tells the
// operator's log about bans, unbans and alerts. Lines are written by one background queue;
// the event loops only hand them over, so a slow disk or a stalled pipe never blocks a
// session. The queue writes whatever has gathered since its last turn in one write(2) of
// whole lines: alone, a line is written at once (`tail -f` sees it); under load, one wake-up
// and one system call carry many. If the lines back up past their bound, events are dropped
// and a "dropped" line says how many.

import Dispatch
import Foundation
import GuardCore
import Logging
import Synchronization

public final class EventLogWriter: EventSink {
    public static let maxQueued = 100_000

    /// Used only on `queue`; a Mutex only to satisfy Sendable.
    private let descriptor: Mutex<Int32>
    private let queue = DispatchQueue(label: "smtpguard.events")
    /// Lines handed over and not yet taken by the queue, and whether a turn is scheduled.
    private let pending = Mutex<(text: String, lines: Int, scheduled: Bool)>(("", 0, false))
    private let dropped = Atomic<Int>(0)
    public let path: String

    public init(path: String) throws {
        self.path = path
        self.descriptor = Mutex(path == "-" ? STDOUT_FILENO : try Self.open(path))
    }

    private static func open(_ path: String) throws -> Int32 {
        let fd = Foundation.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw EventLogError(message: "cannot open the event log \(path): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// Opens the file again by name (after logrotate moved it away), once every line handed
    /// over so far is written to the old one. On failure the old file stays in use.
    public func reopen() throws {
        guard self.path != "-" else { return }
        try self.queue.sync {
            let fresh = try Self.open(self.path)
            let old = self.descriptor.withLock { fd in
                defer { fd = fresh }
                return fd
            }
            close(old)
        }
    }

    public func record(_ event: GuardEvent) {
        let line = event.jsonLine
        let schedule = self.pending.withLock { pending -> Bool in
            guard pending.lines < Self.maxQueued else {
                self.dropped.wrappingAdd(1, ordering: .relaxed)
                return false
            }
            pending.text += line
            pending.text += "\n"
            pending.lines += 1
            defer { pending.scheduled = true }
            return !pending.scheduled
        }
        if schedule { self.queue.async { self.drain() } }
    }

    /// Writes what has gathered, until nothing is left.
    private func drain() {
        while true {
            let text = self.pending.withLock { pending -> String? in
                guard pending.lines > 0 else {
                    pending.scheduled = false
                    return nil
                }
                defer {
                    pending.text = ""
                    pending.lines = 0
                }
                return pending.text
            }
            guard let text else { break }
            self.reportDrops()
            self.write(text)
        }
        self.reportDrops()
    }

    /// Waits until every event handed over so far is written (and any drop is reported).
    public func flush() {
        self.queue.sync { self.reportDrops() }
    }

    private func reportDrops() {
        let lost = self.dropped.exchange(0, ordering: .relaxed)
        if lost > 0 {
            self.write("{\"time\":\"\(SystemClock().now().iso8601)\",\"event\":\"dropped\",\"count\":\(lost)}\n")
        }
    }

    private func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(self.descriptor.withLock { $0 }, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    // Disk full or gone: end a half-written line so the next one stays whole.
                    if offset > 0 { _ = Foundation.write(self.descriptor.withLock { $0 }, "\n", 1) }
                    return
                }
                offset += written
            }
        }
    }

    deinit {
        // Every queued block holds the writer: by now none is left to run.
        let fd = self.descriptor.withLock { $0 }
        if fd > 2 { close(fd) }
    }
}

public struct EventLogError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { self.message }
}

/// Logs bans, unbans and alerts for the operator, then passes every event on.
public struct LoggingEventSink: EventSink {
    public let next: (any EventSink)?
    public let logger: Logger

    public init(next: (any EventSink)?, logger: Logger) {
        self.next = next
        self.logger = logger
    }

    public func record(_ event: GuardEvent) {
        switch event {
        case .ban(let ban):
            self.logger.notice(
                "ban: \(ban.key.scope.rawValue) \(ban.key.description.logSafe) until \(ban.until.iso8601) (\(ban.reason.rawValue), offence \(ban.offense))")
        case .unban(let ban, _, let lifted):
            self.logger.info("unban: \(ban.key.scope.rawValue) \(ban.key.description.logSafe) (\(lifted ? "lifted" : "expired"))")
        case .alert(let alert):
            let message = "alert \(alert.kind.rawValue): \(alert.message.logSafe)"
            if alert.severity == .critical { self.logger.critical("\(message)") } else { self.logger.warning("\(message)") }
        case .sending(let record):
            self.logger.warning(
                "sending refused: \(record.request.username.logSafe) from \(record.request.client?.description ?? "-"): \(record.decision.text)")
        case .attempt:
            break
        }
        self.next?.record(event)
    }
}
