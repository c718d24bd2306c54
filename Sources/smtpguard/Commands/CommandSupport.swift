// What `run` and `watch` (and `replay`) do alike at start: logging at the chosen level, the
// configuration file, the event log.

import ArgumentParser
import GuardCore
import Logging

enum CommandSupport {
    /// Logs to standard error at `levelText`; the logger to use.
    static func bootstrapLogging(_ levelText: String) throws -> Logger {
        guard let level = Logger.Level(rawValue: levelText) else {
            throw ValidationError("--log-level: unknown level \"\(levelText)\"")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "smtpguard")
    }

    /// The configuration file, or the defaults when none is given.
    static func loadFile(_ path: String?) throws -> GuardConfiguration {
        guard let path else { return GuardConfiguration() }
        do {
            return try ConfigurationLoader.load(path: path)
        } catch let failure as ConfigurationLoader.Failure {
            throw StartupError("invalid configuration:\n\(failure)")
        }
    }

    /// The event log of `events.path`, or nil when it is off.
    static func openEventLog(_ configuration: GuardConfiguration) throws -> EventLogWriter? {
        guard !configuration.events.path.isEmpty else { return nil }
        do {
            return try EventLogWriter(path: configuration.events.path)
        } catch {
            throw StartupError("\(error)")
        }
    }
}
