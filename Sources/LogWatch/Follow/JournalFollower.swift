// Follows journald through `journalctl --follow --output=json` (the guard starts it, and starts
// it again with a growing pause if it exits), with unit and identifier filters (any of them). Each JSON
// line is one entry: its MESSAGE (text, or an array of bytes when not UTF-8) goes to the
// formats with SYSLOG_IDENTIFIER as the program; its __CURSOR is kept so that a restart
// resumes after the last entry read (--after-cursor).

import Foundation
import GuardCore

/// One journal entry, as the formats need it.
public struct JournalEntry: Sendable, Equatable {
    public var program: [UInt8]
    public var message: [UInt8]
    public var cursor: String?
    /// Microseconds since 1970, when given.
    public var realtime: Int64?

    /// Parses one line of `journalctl --output=json`; nil when it is not an entry.
    public static func parse(_ line: ArraySlice<UInt8>) -> JournalEntry? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else { return nil }
        func bytes(_ value: Any?) -> [UInt8]? {
            if let text = value as? String { return Array(text.utf8) }
            if let array = value as? [Any] { return array.compactMap { ($0 as? NSNumber).map { UInt8(truncatingIfNeeded: $0.intValue) } } }
            return nil
        }
        guard let message = bytes(object["MESSAGE"]) else { return nil }
        let program = bytes(object["SYSLOG_IDENTIFIER"]) ?? bytes(object["_COMM"]) ?? []
        let realtime = (object["__REALTIME_TIMESTAMP"] as? String).flatMap { Int64($0) }
        return JournalEntry(program: program, message: message, cursor: object["__CURSOR"] as? String, realtime: realtime)
    }
}

public final class JournalFollower {
    public let executable: String
    public let units: [String]
    public let identifiers: [String]
    public private(set) var cursor: String?
    private var child: ChildProcess?
    private var splitter = LineSplitter(maxLineLength: 1 << 20)
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var restartAt: ContinuousClock.Instant = .now
    private var backoff: Duration = .seconds(1)

    public init(executable: String, units: [String], identifiers: [String], cursor: String?) {
        self.executable = executable
        self.units = units
        self.identifiers = identifiers
        self.cursor = cursor
    }

    deinit { self.stop() }

    /// The journalctl arguments. Every filter is its own match joined by "+", so that several
    /// mean OR: `unit=postfix@-.service,identifier=dovecot` is Postfix's lines and Dovecot's.
    /// (`--unit=… --identifier=…` would AND them and select nothing.) A unit is matched as
    /// `_SYSTEMD_UNIT`, the unit whose processes wrote the line, named as journalctl names
    /// it: `postfix@-` is `postfix@-.service`.
    public var arguments: [String] {
        var arguments = ["--follow", "--output=json", "--no-pager"]
        if let cursor { arguments.append("--after-cursor=\(cursor)") } else { arguments.append("--lines=0") }
        let matches = self.units.map { "_SYSTEMD_UNIT=\(Self.unitName($0))" } + self.identifiers.map { "SYSLOG_IDENTIFIER=\($0)" }
        for (i, match) in matches.enumerated() {
            if i > 0 { arguments.append("+") }
            arguments.append(match)
        }
        return arguments
    }

    /// A unit as systemd names it: without a type suffix it is a service.
    static func unitName(_ name: String) -> String {
        let types = ["service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope"]
        if let dot = name.lastIndex(of: "."), types.contains(String(name[name.index(after: dot)...])) { return name }
        return name + ".service"
    }

    /// Reads what journalctl wrote; starts it when it is not running (and its pause is over).
    @discardableResult
    public func poll(entry: (JournalEntry) -> Void, notice: (String) -> Void) -> Int {
        if self.child == nil {
            guard ContinuousClock.now >= self.restartAt else { return 0 }
            self.start(notice: notice)
            guard self.child != nil else { return 0 }
        }
        var total = 0
        while let child = self.child {
            let n = self.buffer.withUnsafeMutableBytes { read(child.output, $0.baseAddress, $0.count) }
            if n > 0 {
                total += n
                self.splitter.feed(self.buffer[0..<n]) { line in
                    guard let parsed = JournalEntry.parse(line) else { return }
                    if let cursor = parsed.cursor { self.cursor = cursor }
                    entry(parsed)
                }
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
            // End of output: journalctl exited.
            let status = self.finish()
            notice("journalctl exited (status \(status)); starting it again in \(self.backoff.compactText)")
            self.restartAt = .now + self.backoff
            self.backoff = min(self.backoff * 2, .seconds(30))
            break
        }
        if total > 0 { self.backoff = .seconds(1) }
        return total
    }

    private func start(notice: (String) -> Void) {
        do {
            guard let executable = ChildProcess.find(self.executable) else {
                throw ChildProcess.Failure(description: "\(self.executable) not found")
            }
            let child = try ChildProcess.spawn(executable, self.arguments, captureError: false)
            _ = fcntl(child.output, F_SETFL, fcntl(child.output, F_GETFL) | O_NONBLOCK)
            self.child = child
            self.splitter.reset()
        } catch {
            notice("cannot start \(self.executable): \(error); trying again in \(self.backoff.compactText)")
            self.restartAt = .now + self.backoff
            self.backoff = min(self.backoff * 2, .seconds(30))
        }
    }

    private func finish() -> Int32 {
        guard let child = self.child else { return 0 }
        close(child.output)
        self.child = nil
        return child.wait()
    }

    public func stop() {
        guard let child = self.child else { return }
        kill(child.pid, SIGTERM)
        close(child.output)
        child.wait()
        self.child = nil
    }
}
