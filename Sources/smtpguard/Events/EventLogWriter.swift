// Writes events as JSON lines to a file (appending) or to standard output, and tells the
// operator's log about bans, unbans and alerts. One write(2) per event, so a line is never
// interleaved with another and `tail -f` sees it at once.

import Foundation
import GuardCore
import Logging
import Synchronization

public final class EventLogWriter: EventSink {
    private let descriptor: Mutex<Int32>
    public let path: String

    public init(path: String) throws {
        self.path = path
        if path == "-" {
            self.descriptor = Mutex(STDOUT_FILENO)
            return
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw EventLogError(message: "cannot open the event log \(path): \(String(cString: strerror(errno)))")
        }
        self.descriptor = Mutex(fd)
    }

    public func record(_ event: GuardEvent) {
        var line = event.jsonLine
        line += "\n"
        self.descriptor.withLock { fd in
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return
                    }
                    offset += written
                }
            }
        }
    }

    deinit {
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
                "ban: \(ban.key.scope.rawValue) \(Self.printable(ban.key.description)) until \(ban.until.iso8601) (\(ban.reason.rawValue), offence \(ban.offense))")
        case .unban(let ban, _, let lifted):
            self.logger.info("unban: \(ban.key.scope.rawValue) \(Self.printable(ban.key.description)) (\(lifted ? "lifted" : "expired"))")
        case .alert(let alert):
            let message = "alert \(alert.kind.rawValue): \(Self.printable(alert.message))"
            if alert.severity == .critical { self.logger.critical("\(message)") } else { self.logger.warning("\(message)") }
        case .attempt:
            break
        }
        self.next?.record(event)
    }

    static func printable(_ text: String) -> String {
        var out = ""
        JSONObjectWriter.appendQuoted(text, to: &out)
        return String(out.dropFirst().dropLast())
    }
}
