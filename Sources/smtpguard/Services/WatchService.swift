// Polls every log source every `watch.poll_interval`, feeds what is new to the engine, and
// saves the positions every second and at shutdown. With standard input as the only source,
// the end of input ends the watcher.

import GuardCore
import LogWatch
import Logging
import ServiceLifecycle

struct WatchService: Service {
    let configuration: WatchConfiguration
    let feeder: EvidenceFeeder
    let clock: any GuardClock
    let logger: Logger

    func run() async throws {
        var book = PositionBook()
        if !self.configuration.positions.isEmpty {
            do {
                book = try PositionBook.load(path: self.configuration.positions)
            } catch {
                throw StartupError("watch.positions: \(error)")
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
                throw StartupError("watch.sources \"\(source)\": \(error)")
            }
        }
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
            for source in sources {
                source.poll(feeder: self.feeder, clock: self.clock) { self.logger.notice("\(source.source): \($0)") }
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

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields (the
/// admin token, webhook secret, database URL and policy credentials live in them).
extension WatchService: CustomStringConvertible {
    var description: String { "WatchService" }
}
