// `smtpguard config defaults | check FILE | reference`.

import ArgumentParser
import Foundation
import GuardCore
import SMTPProxy

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the default configuration, or check a configuration file.",
        subcommands: [Defaults.self, Check.self, Reference.self]
    )

    struct Defaults: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the whole default configuration as YAML, every key commented.",
            discussion: "Save it as a starting point: smtpguard config defaults > smtpguard.yaml")

        func run() {
            print(GuardConfiguration.renderDefaults(), terminator: "")
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file; name the line and key of every error.",
            discussion: """
                Beyond the keys and values: listeners of one configuration that would take the same address (naming both keys), \
                placeholder secrets left from the examples ("change-me…"), and the files the guard will need: the certificate and key \
                (readable by the user running the check, PEM, matching), the backend's CA file. Run it as the guard's user \
                (systemd's ExecStartPre does). Warnings: settings that are valid but likely to hurt (backend.identity none), log \
                files that do not exist yet. Exit status 0 when the file is valid (warnings or not), 1 when it is not.
                """)

        @Argument(help: ArgumentHelp("The configuration file.", valueName: "file"))
        var file: String

        func run() throws {
            let configuration: GuardConfiguration
            do {
                configuration = try ConfigurationLoader.load(path: self.file)
            } catch let failure as ConfigurationLoader.Failure {
                for issue in failure.issues { print(issue.description) }
                let count = failure.issues.count
                print("\(self.file): \(count) error\(count == 1 ? "" : "s")")
                throw ExitCode(1)
            }
            var errors: [String] = []
            if configuration.proxy.tls.isConfigured {
                do {
                    let store = try TLSContextStore(settings: configuration.proxy.tls)
                    print("\(self.file): tls.certificate: \(store.summary.subject), valid until \(store.summary.notAfter)")
                } catch {
                    errors.append("\(error)")
                }
            }
            if configuration.proxy.backendTLS != .none && !configuration.proxy.backendTLSCA.isEmpty {
                do { _ = try BackendTLS(configuration.proxy) } catch { errors.append("\(error)") }
            }
            // The proxy's warnings concern a file that configures the proxy (not a watcher's or policy server's).
            let defaults = GuardConfiguration()
            let configuresProxy = configuration.proxy.listen != defaults.proxy.listen || configuration.proxy.backend != defaults.proxy.backend || !configuration.proxy.listenTLS.isEmpty
            var warnings = configuresProxy ? configuration.warnings.map { "\($0.key): \($0.message)" } : []
            for source in configuration.watch.sources where source.kind == .file && access(source.path, F_OK) != 0 {
                warnings.append(
                    "watch.sources: \(source.path) does not exist (yet); the watcher waits for it. On a system without rsyslog (Debian 12's default) the mail log is in journald: use a journald: source")
            }
            for warning in warnings { print("\(self.file): warning: \(warning)") }
            guard errors.isEmpty else {
                for error in errors { print("\(self.file): \(error)") }
                print("\(self.file): \(errors.count) error\(errors.count == 1 ? "" : "s")")
                throw ExitCode(1)
            }
            print("\(self.file): valid")
        }
    }

    struct Reference: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the configuration reference as a Markdown table (as in README.md).")

        func run() {
            print(GuardConfiguration.renderReference(), terminator: "")
        }
    }
}
