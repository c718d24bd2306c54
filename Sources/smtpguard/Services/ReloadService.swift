// SIGHUP (`systemctl reload`, `kill -HUP`): reopens the event log by name, so that logrotate
// can move it away and no line is lost. Trapping SIGHUP also means a reload never kills the
// guard, whatever is configured.

import GuardCore
import Logging
import ServiceLifecycle
import UnixSignals

struct ReloadService: Service {
    let eventLog: EventLogWriter?
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            guard let eventLog = self.eventLog, eventLog.path != "-" else {
                self.logger.info("SIGHUP: nothing to reopen")
                continue
            }
            do {
                try eventLog.reopen()
                self.logger.info("SIGHUP: event log reopened", metadata: ["events": .string(eventLog.path)])
            } catch {
                self.logger.error("SIGHUP: \(error); still writing to the previous file")
            }
        }
    }
}
