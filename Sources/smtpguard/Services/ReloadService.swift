// SIGHUP (`systemctl reload`, `kill -HUP`): reopens the event log by name, so that logrotate
// can move it away and no line is lost, and reloads the TLS certificate and key (renewed by
// certbot, say): new sessions get the new ones, open sessions keep theirs. Trapping SIGHUP
// also means a reload never kills the guard, whatever is configured.

import Foundation
import GuardCore
import GuardStore
import Logging
import SMTPProxy
import ServiceLifecycle
import UnixSignals

struct ReloadService: Service {
    let eventLog: EventLogWriter?
    let tls: TLSContextStore?
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            self.reopenEventLog()
            self.reloadCertificate()
        }
    }

    private func reopenEventLog() {
        guard let eventLog = self.eventLog, eventLog.path != "-" else { return }
        do {
            try eventLog.reopen()
            self.logger.info("SIGHUP: event log reopened", metadata: ["events": .string(eventLog.path)])
        } catch {
            self.logger.error("SIGHUP: \(error); still writing to the previous file")
        }
    }

    private func reloadCertificate() {
        guard let tls = self.tls else { return }
        do {
            let summary = try tls.reload()
            CertificateLog.loaded(summary, settings: tls.settings, logger: self.logger, reloaded: true)
        } catch {
            self.logger.error("SIGHUP: \(error); the previous certificate stays in use")
        }
    }
}

/// One log line about the certificate in use, and a warning while it nears its end.
enum CertificateLog {
    static func loaded(_ summary: CertificateSummary, settings: TLSSettings, logger: Logger, reloaded: Bool = false) {
        let metadata: Logger.Metadata = [
            "tls.certificate": .string(settings.certificate), "tls.subject": .string(summary.subject),
            "tls.not_after": .string(ISO8601DateFormatter().string(from: summary.notAfter)), "tls.chain": .string("\(summary.chainLength)"),
        ]
        logger.info(reloaded ? "SIGHUP: TLS certificate reloaded" : "TLS certificate loaded", metadata: metadata)
        let left = summary.notAfter.timeIntervalSinceNow
        if left < 0 {
            logger.error("the TLS certificate has expired: clients that check it will refuse the guard", metadata: metadata)
        } else if left < 14 * 86_400 {
            logger.warning("the TLS certificate expires in \(Int(left / 86_400)) days", metadata: metadata)
        }
    }
}

/// ServiceLifecycle logs each service as "\(service)": its name only, never its fields (the
/// admin token, webhook secret, database URL and policy credentials live in them).
extension ReloadService: CustomStringConvertible {
    var description: String { "ReloadService" }
}
