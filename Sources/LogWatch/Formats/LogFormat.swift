// A log format turns one log line into what the engine needs: an AUTH attempt (client,
// username, outcome, time) or nothing. Formats are pure and work on the line's bytes with
// anchored, hand-written matching: a username can never move the address a line is blamed on.
// A line that looks like an AUTH failure but matches no rule is reported as a suspect, so a
// changed log format is noticed instead of silently missed.

import GuardCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a format made of a line.
public enum LogMatch: Equatable, Sendable {
    /// An AUTH attempt; `count` > 1 when one line reports several (Dovecot's "N attempts").
    /// `time`: when the format carries its own (a Windows event's TimeCreated), else the
    /// parser reads the line's syslog time.
    case attempt(rule: String, client: IPAddress, username: String, outcome: AuthOutcome, count: Int, time: Timestamp? = nil)
    /// The line looks like an AUTH failure (it says "auth" and "fail"), but no rule took it.
    case suspect
}

public protocol LogFormat: Sendable {
    /// The name a configuration selects it by ("postfix", "dovecot", …).
    var name: String { get }
    /// The rules it has, for `watch --check` counts.
    var rules: [String] { get }
    /// One line. `message` and `program` are the parts after a syslog or journal prefix
    /// (empty when the line has none); `line` is the whole line, for formats with their own
    /// layout (Exim's main log, Exchange's CSV). Formats that follow sessions across lines
    /// (Exchange) keep that state in themselves, so each source has its own copy.
    mutating func match(line: ArraySlice<UInt8>, message: ArraySlice<UInt8>, program: ArraySlice<UInt8>) -> LogMatch?
    /// Further attempts the last line held (Event XML puts many events on one line); nil when
    /// there are no more.
    mutating func nextMatch() -> LogMatch?
}

extension LogFormat {
    public mutating func nextMatch() -> LogMatch? { nil }
}

extension ArraySlice where Element == UInt8 {
    /// The offset of `needle` at or after `from`, or nil (memchr for the first byte, then memcmp).
    func find(_ needle: [UInt8], from: Int? = nil) -> Int? {
        let start = from ?? self.startIndex
        guard !needle.isEmpty, start >= self.startIndex, self.endIndex - start >= needle.count else { return nil }
        return self.withUnsafeBufferPointer { buffer -> Int? in
            needle.withUnsafeBufferPointer { pattern -> Int? in
                guard let base = buffer.baseAddress, let first = pattern.baseAddress else { return nil }
                var offset = start - self.startIndex
                let last = buffer.count - pattern.count
                while offset <= last {
                    guard let hit = memchr(base + offset, Int32(pattern[0]), last - offset + 1) else { return nil }
                    let at = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                    if memcmp(base + at, first, pattern.count) == 0 { return self.startIndex + at }
                    offset = at + 1
                }
                return nil
            }
        }
    }

    /// The offset of the last `needle`, or nil.
    func findLast(_ needle: [UInt8]) -> Int? {
        var found: Int?
        var from = self.startIndex
        while let at = self.find(needle, from: from) {
            found = at
            from = at + 1
        }
        return found
    }

    func hasPrefix(_ prefix: [UInt8], at offset: Int) -> Bool {
        guard offset >= self.startIndex, self.endIndex - offset >= prefix.count else { return false }
        for (k, byte) in prefix.enumerated() where self[offset + k] != byte { return false }
        return true
    }

    func hasSuffix(_ suffix: [UInt8]) -> Bool {
        self.count >= suffix.count && self.hasPrefix(suffix, at: self.endIndex - suffix.count)
    }

    var text: String { String(decoding: self, as: UTF8.self) }

    /// ASCII case-insensitive contains; `needle` is lower case.
    func containsCaseless(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= self.count else { return false }
        return self.withUnsafeBufferPointer { buffer in
            let first = needle[0]
            let last = buffer.count - needle.count
            var i = 0
            while i <= last {
                if buffer[i] | 0x20 == first {
                    var j = 1
                    while j < needle.count && (buffer[i + j] | 0x20) == needle[j] { j += 1 }
                    if j == needle.count { return true }
                }
                i += 1
            }
            return false
        }
    }
}

enum Needles {
    static let auth = Array("auth".utf8)
    static let fail = Array("fail".utf8)
    static let mismatch = Array("mismatch".utf8)
    static let colonSpace = Array(": ".utf8)
}

/// A line that says it is about authentication and failure, in any case.
func looksLikeAuthFailure(_ message: ArraySlice<UInt8>) -> Bool {
    message.containsCaseless(Needles.auth) && (message.containsCaseless(Needles.fail) || message.containsCaseless(Needles.mismatch))
}
