// One configured source: its follower (file, directory, standard input, journald or a syslog
// receiver) and its parser, polled by the watch service. Not shared between tasks.

import GuardCore

public final class SourceWatcher {
    public let source: WatchSource
    public private(set) var parser: LogParser
    private let follower: Follower

    enum Follower {
        case file(FileFollower)
        case directory(DirectoryFollower)
        case stream(StreamFollower)
        case journal(JournalFollower)
        case listener(SyslogListener)
    }

    public init(source: WatchSource, configuration: WatchConfiguration, book: PositionBook, now: Timestamp) throws {
        self.source = source
        let formats = try source.formats.map { try LogFormats.make($0, patterns: configuration.patterns) }
        self.parser = LogParser(formats: formats, parseTimes: false, now: now)
        let startAtEnd = !configuration.fromStart
        switch source.kind {
        case .file:
            self.follower = .file(FileFollower(path: source.path, resume: book.files[source.path], startAtEnd: startAtEnd, maxLineLength: configuration.maxLineLength))
        case .directory:
            self.follower = .directory(DirectoryFollower(directory: source.path, pattern: source.pattern, resume: book.directories[source.path], startAtEnd: startAtEnd))
        case .stdin:
            self.follower = .stream(StreamFollower(fd: 0, maxLineLength: configuration.maxLineLength))
        case .journald:
            self.follower = .journal(JournalFollower(executable: configuration.journalctl, units: source.units, identifiers: source.identifiers, cursor: book.cursors[Self.journalKey(source)]))
        case .syslog:
            self.follower = .listener(
                try SyslogListener(transport: source.transport == "tcp" ? .tcp : .udp, host: source.host, port: source.port, maxMessageLength: max(configuration.maxLineLength, 64 * 1024)))
        }
    }

    static func journalKey(_ source: WatchSource) -> String {
        (source.units.map { "unit=\($0)" } + source.identifiers.map { "identifier=\($0)" }).joined(separator: ",")
    }

    /// Reads what is new and feeds it; returns the bytes read.
    @discardableResult
    public func poll(feeder: EvidenceFeeder, clock: any GuardClock, notice: (String) -> Void) -> Int {
        let now = clock.now()
        let describe: (FollowNotice) -> Void = { event in
            switch event {
            case .opened(let path, let offset): notice("following \(path) from byte \(offset)")
            case .rotated(let path): notice("\(path) was rotated or replaced: the old file was read to its end, the new one is read from its start")
            case .truncated(let path): notice("\(path) was truncated: reading it again from its start")
            case .missing(let path, let reason): notice("\(path) cannot be opened (\(reason)); waiting for it to appear")
            }
        }
        switch self.follower {
        case .file(let follower):
            return follower.poll(line: { self.take($0, feeder: feeder, now: now) }, notice: describe)
        case .directory(let follower):
            return follower.poll(line: { self.take($0, feeder: feeder, now: now) }, notice: describe)
        case .stream(let follower):
            return follower.poll(line: { self.take($0, feeder: feeder, now: now) })
        case .listener(let listener):
            return listener.poll(message: { self.take($0, feeder: feeder, now: now) })
        case .journal(let follower):
            return follower.poll(
                entry: { entry in
                    if let evidence = self.parser.parse(message: entry.message[...], program: entry.program[...]) {
                        feeder.feed(evidence, now: now)
                        while let more = self.parser.next() { feeder.feed(more, now: now) }
                    }
                }, notice: notice)
        }
    }

    private func take(_ line: ArraySlice<UInt8>, feeder: EvidenceFeeder, now: Timestamp) {
        if let evidence = self.parser.parse(line) {
            feeder.feed(evidence, now: now)
            while let more = self.parser.next() { feeder.feed(more, now: now) }
        }
    }

    /// True for standard input once it has ended.
    public var ended: Bool {
        if case .stream(let follower) = self.follower { return follower.ended }
        return false
    }

    /// Records this source's position in the book.
    public func save(into book: inout PositionBook) {
        switch self.follower {
        case .file(let follower): if let position = follower.position { book.files[self.source.path] = position }
        case .directory(let follower): if let position = follower.position { book.directories[self.source.path] = position }
        case .journal(let follower): if let cursor = follower.cursor { book.cursors[Self.journalKey(self.source)] = cursor }
        case .stream, .listener: break
        }
    }

    public func stop() {
        if case .journal(let follower) = self.follower { follower.stop() }
        if case .listener(let listener) = self.follower { listener.stop() }
    }
}
