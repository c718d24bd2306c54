// One source's parser: the formats configured for it, each line tried against them in order,
// and the counts `watch --check` and `replay` report (lines, matches per rule, suspects).

import GuardCore

/// An AUTH attempt found in a log line.
public struct LogEvidence: Sendable, Equatable {
    public var format: String
    public var rule: String
    public var client: IPAddress
    public var username: String
    public var outcome: AuthOutcome
    public var count: Int
    /// Which source reported it: the log watcher, or Windows' Security events.
    public var source: AttemptSource {
        self.format == WindowsFormat.formatName ? .windows : .logWatch
    }
    /// The time in the line, when it has one.
    public var time: Timestamp?

    public init(format: String, rule: String, client: IPAddress, username: String, outcome: AuthOutcome, count: Int, time: Timestamp?) {
        self.format = format
        self.rule = rule
        self.client = client
        self.username = username
        self.outcome = outcome
        self.count = count
        self.time = time
    }

    /// The attempt the engine is given (one per counted attempt).
    public func attempt(at time: Timestamp) -> AuthAttempt {
        AuthAttempt(
            time: time, client: self.client, username: self.username, mechanism: .other, outcome: self.outcome, source: self.source,
            credential: CredentialEvidence(isDefaultPassword: self.rule == "default_credential"))
    }
}

public struct LogParser: Sendable {
    public private(set) var formats: [any LogFormat]
    public private(set) var lines = 0
    /// Matches per format (by position) and rule name.
    private var matches: [[String: Int]]
    public private(set) var suspectCount = 0
    /// Lines that matched a rule.
    public private(set) var matchedCount = 0
    /// The first suspects, cut to 300 bytes each, for people to look at.
    public private(set) var suspects: [String] = []
    public static let keptSuspects = 20
    /// Lines parsed with `parseTimes`: their year, when syslog leaves it out.
    var year: Int
    var month: Int
    let parseTimes: Bool

    /// `now` supplies the year of syslog lines, which have none.
    public init(formats: [any LogFormat], parseTimes: Bool, now: Timestamp) {
        self.formats = formats
        self.matches = Array(repeating: [:], count: formats.count)
        self.parseTimes = parseTimes
        (self.year, self.month) = LineTime.yearMonth(now)
    }

    /// Attempts after the first that the last line held (several Windows events on one line):
    /// take them with `next()` after each `parse`.
    private var more: (index: Int, line: ArraySlice<UInt8>)?

    public mutating func parse(_ line: ArraySlice<UInt8>) -> LogEvidence? {
        let syslog = SyslogLine(line)
        return self.parse(line: line, message: syslog?.message ?? line[line.endIndex...], program: syslog?.program ?? line[line.endIndex...])
    }

    /// A journal entry: the program and message come separately.
    public mutating func parse(message: ArraySlice<UInt8>, program: ArraySlice<UInt8>) -> LogEvidence? {
        self.parse(line: message, message: message, program: program)
    }

    mutating func parse(line: ArraySlice<UInt8>, message: ArraySlice<UInt8>, program: ArraySlice<UInt8>) -> LogEvidence? {
        self.lines += 1
        self.more = nil
        var suspect = false
        for index in self.formats.indices {
            switch self.formats[index].match(line: line, message: message, program: program) {
            case .attempt(let rule, let client, let username, let outcome, let count, let own):
                self.more = (index, line)
                return self.evidence(index: index, line: line, rule: rule, client: client, username: username, outcome: outcome, count: count, time: own, newLine: true)
            case .suspect:
                suspect = true
            case nil:
                continue
            }
        }
        if suspect {
            self.suspectCount += 1
            if self.suspects.count < Self.keptSuspects { self.suspects.append(String(decoding: line.prefix(300), as: UTF8.self)) }
        }
        return nil
    }

    /// The next attempt the last parsed line held, if any.
    public mutating func next() -> LogEvidence? {
        guard let (index, line) = self.more else { return nil }
        guard case .attempt(let rule, let client, let username, let outcome, let count, let own)? = self.formats[index].nextMatch() else {
            self.more = nil
            return nil
        }
        return self.evidence(index: index, line: line, rule: rule, client: client, username: username, outcome: outcome, count: count, time: own, newLine: false)
    }

    private mutating func evidence(index: Int, line: ArraySlice<UInt8>, rule: String, client: IPAddress, username: String, outcome: AuthOutcome, count: Int, time own: Timestamp?, newLine: Bool) -> LogEvidence {
        self.matches[index][rule, default: 0] += 1
        if newLine { self.matchedCount += 1 }
        let time = self.parseTimes ? (own ?? LineTime.parse(line, year: self.year, month: self.month)) : nil
        return LogEvidence(format: self.formats[index].name, rule: rule, client: client, username: username, outcome: outcome, count: count, time: time)
    }

    /// Every rule of every format, with its count (zero included), as "format/rule".
    public var ruleCounts: [(rule: String, count: Int)] {
        self.formats.indices.flatMap { index in
            self.formats[index].rules.map { (self.formats[index].name + "/" + $0, self.matches[index][$0] ?? 0) }
        }
    }
}
