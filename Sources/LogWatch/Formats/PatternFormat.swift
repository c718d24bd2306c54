// User-defined patterns (`watch.patterns`): regular expressions with a named group `address`
// and optionally `username`, for software no built-in format knows. Each must match the whole
// message (the part after the syslog prefix; the whole line when there is none), so a pattern
// cannot match part of a line by accident. A line that matches is an AUTH failure.

import GuardCore

public struct PatternFormat: LogFormat {
    public let name = "patterns"
    public let rules: [String]
    private let patterns: [Pattern]

    struct Pattern: @unchecked Sendable {  // Regex holds no shared mutable state
        var regex: Regex<AnyRegexOutput>
        var hasUsername: Bool
    }

    /// What was wrong with one pattern.
    public struct Invalid: Error, CustomStringConvertible {
        public var index: Int
        public var reason: String
        public var description: String { "pattern \(self.index + 1): \(self.reason)" }
    }

    public init(_ sources: [String]) throws(Invalid) {
        var patterns: [Pattern] = []
        for (index, source) in sources.enumerated() {
            let regex: Regex<AnyRegexOutput>
            do {
                regex = try Regex(source)
            } catch {
                throw Invalid(index: index, reason: "not a valid regular expression: \(error)")
            }
            guard source.contains("(?<address>") else {
                throw Invalid(index: index, reason: "needs a named group (?<address>…) for the client address")
            }
            patterns.append(Pattern(regex: regex, hasUsername: source.contains("(?<username>")))
        }
        self.patterns = patterns
        self.rules = sources.indices.map { "pattern_\($0 + 1)" }
    }

    public func match(line: ArraySlice<UInt8>, message: ArraySlice<UInt8>, program: ArraySlice<UInt8>) -> LogMatch? {
        let text = (message.isEmpty ? line : message).text
        for (index, pattern) in self.patterns.enumerated() {
            guard let found = try? pattern.regex.wholeMatch(in: text) else { continue }
            guard let addressText = found["address"]?.substring, let address = IPAddress(addressText) else { return .suspect }
            var username = ""
            if pattern.hasUsername, let name = found["username"]?.substring { username = String(name) }
            return .attempt(rule: self.rules[index], client: address, username: username, outcome: .failure, count: 1)
        }
        return nil
    }
}
