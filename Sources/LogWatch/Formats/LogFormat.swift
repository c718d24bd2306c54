// A log format turns one log line into what the engine needs: an AUTH attempt (client,
// username, outcome, time) or nothing. Formats are pure and work on the line's bytes with
// anchored, hand-written matching: a username can never move the address a line is blamed on.
// A line that looks like an AUTH failure but matches no rule is reported as a suspect, so a
// changed log format is noticed instead of silently missed.

import GuardCore

/// What a format made of a line.
public enum LogMatch: Equatable, Sendable {
    /// An AUTH attempt; `count` > 1 when one line reports several (Dovecot's "N attempts").
    case attempt(rule: String, client: IPAddress, username: String, outcome: AuthOutcome, count: Int)
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
}

extension ArraySlice where Element == UInt8 {
    /// The offset of `needle` at or after `from`, or nil.
    func find(_ needle: [UInt8], from: Int? = nil) -> Int? {
        let start = from ?? self.startIndex
        guard needle.count > 0, self.endIndex - start >= needle.count else { return nil }
        let first = needle[0]
        var i = start
        let last = self.endIndex - needle.count
        while i <= last {
            if self[i] == first {
                var j = 1
                while j < needle.count && self[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }

    func hasPrefix(_ prefix: [UInt8], at offset: Int) -> Bool {
        guard self.endIndex - offset >= prefix.count else { return false }
        for (k, byte) in prefix.enumerated() where self[offset + k] != byte { return false }
        return true
    }

    func hasSuffix(_ suffix: [UInt8]) -> Bool {
        self.count >= suffix.count && self.hasPrefix(suffix, at: self.endIndex - suffix.count)
    }

    var text: String { String(decoding: self, as: UTF8.self) }

    /// Lower-cased ASCII contains (for suspects).
    func containsCaseless(_ needle: [UInt8]) -> Bool {
        guard needle.count <= self.count else { return false }
        var i = self.startIndex
        while i <= self.endIndex - needle.count {
            var j = 0
            while j < needle.count && (self[i + j] | 0x20) == needle[j] { j += 1 }
            if j == needle.count { return true }
            i += 1
        }
        return false
    }
}

/// A line that says it is about authentication and failure, in any case.
func looksLikeAuthFailure(_ message: ArraySlice<UInt8>) -> Bool {
    message.containsCaseless(Array("auth".utf8)) && (message.containsCaseless(Array("fail".utf8)) || message.containsCaseless(Array("mismatch".utf8)))
}
