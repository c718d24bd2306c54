// Polls every log source every `watch.poll_interval`, feeds what is new to the engine, and
// saves the positions every second and at shutdown. With standard input as the only source,
// the end of input ends the watcher. Each source's lines are counted in /metrics (matched,
// suspect, other), and a source that reads nothing for `watch.silence_alert` raises an alert.

import GuardCore
import Logging
import Metrics
import ServiceLifecycle

public struct WatchService: Service {
    let configuration: WatchConfiguration
    let feeder: EvidenceFeeder
    let events: any EventSink
    let clock: any GuardClock
    let logger: Logger

    public init(configuration: WatchConfiguration, feeder: EvidenceFeeder, events: any EventSink, clock: any GuardClock, logger: Logger) {
        self.configuration = configuration
        self.feeder = feeder
        self.events = events
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        var book = PositionBook()
        if !self.configuration.positions.isEmpty {
            do {
                book = try PositionBook.load(path: self.configuration.positions)
            } catch {
                throw WatchStartError("watch.positions: \(error)")
            }
        }
        let loaded = book
        try await cancelWhenGracefulShutdown { try await self.follow(book: loaded) }
    }

    private func follow(book: PositionBook) async throws {
        var book = book
        let now = self.clock.now()
        let sources = try self.configuration.sources.map { source in
            do {
                return try SourceWatcher(source: source, configuration: self.configuration, book: book, now: now)
            } catch {
                throw WatchStartError("watch.sources \"\(source)\": \(error)")
            }
        }
        var health = sources.map { SourceHealth(name: $0.source.description, silence: self.configuration.silenceAlert, start: now) }
        let meters = sources.map { SourceMeters(source: $0.source.description) }
        let onlyStreams = sources.allSatisfy { $0.source.kind == .stdin }
        var lastSave = ContinuousClock.now
        var saveFailed = false
        func save() {
            guard !self.configuration.positions.isEmpty else { return }
            var updated = book
            for source in sources { source.save(into: &updated) }
            guard updated != book else { return }
            if let problem = updated.save(path: self.configuration.positions) {
                if !saveFailed { self.logger.error("watch.positions: cannot save (\(problem)); a restart would read from the end of each log") }
                saveFailed = true
            } else {
                if saveFailed { self.logger.notice("watch.positions: saved again") }
                saveFailed = false
                book = updated
            }
        }
        defer {
            save()
            for source in sources { source.stop() }
        }
        while !Task.isCancelled {
            let polled = self.clock.now()
            for (index, source) in sources.enumerated() {
                let before = (source.parser.lines, source.parser.matchedCount, source.parser.suspectCount)
                source.poll(feeder: self.feeder, clock: self.clock) { self.logger.notice("\(source.source): \($0)") }
                let lines = source.parser.lines - before.0
                meters[index].count(lines: lines, matched: source.parser.matchedCount - before.1, suspect: source.parser.suspectCount - before.2)
                guard source.source.kind != .stdin else { continue }
                switch health[index].note(lines: lines, at: polled) {
                case .fellSilent(let alert)?:
                    meters[index].silent.record(1)
                    self.logger.warning("\(source.source): \(alert.message)")
                    self.events.record(.alert(alert))
                case .readAgain(let after)?:
                    meters[index].silent.record(0)
                    self.logger.notice("\(source.source): reading lines again after \(after.compactText) without one")
                case nil:
                    break
                }
            }
            if onlyStreams && sources.allSatisfy(\.ended) {
                self.logger.info("standard input ended")
                return
            }
            if ContinuousClock.now - lastSave >= .seconds(1) {
                save()
                lastSave = .now
            }
            do {
                try await Task.sleep(for: self.configuration.pollInterval)
            } catch {
                return  // shutting down: the deferred save runs
            }
        }
    }
}

/// One source's series on /metrics.
struct SourceMeters {
    let matched: Counter
    let suspect: Counter
    let other: Counter
    let silent: Gauge

    init(source: String) {
        self.matched = Counter(label: MetricNames.watchLines, dimensions: [("source", source), ("result", "matched")])
        self.suspect = Counter(label: MetricNames.watchLines, dimensions: [("source", source), ("result", "suspect")])
        self.other = Counter(label: MetricNames.watchLines, dimensions: [("source", source), ("result", "other")])
        self.silent = Gauge(label: MetricNames.watchSourceSilent, dimensions: [("source", source)])
        self.silent.record(0)
    }

    func count(lines: Int, matched: Int, suspect: Int) {
        if matched > 0 { self.matched.increment(by: matched) }
        if suspect > 0 { self.suspect.increment(by: suspect) }
        if lines - matched - suspect > 0 { self.other.increment(by: lines - matched - suspect) }
    }
}

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields (the
/// admin token, webhook secret, database URL and policy credentials live in them).
/// A reason the watcher or its firewall cannot start, for the administrator (the command
/// prints it as it prints its own start errors).
public struct WatchStartError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension WatchService: CustomStringConvertible {
    public var description: String { "WatchService" }
}
