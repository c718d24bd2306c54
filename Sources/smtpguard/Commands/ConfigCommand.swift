// `smtpguard config defaults | check FILE | reference`.

import ArgumentParser
import GuardCore

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
            discussion: "Also prints warnings for settings that are valid but likely to hurt (backend.identity none). Exit status 0 when the file is valid (warnings or not), 1 when it is not.")

        @Argument(help: ArgumentHelp("The configuration file.", valueName: "file"))
        var file: String

        func run() throws {
            do {
                let configuration = try ConfigurationLoader.load(path: self.file)
                for warning in configuration.warnings { print("\(self.file): warning: \(warning.key): \(warning.message)") }
                print("\(self.file): valid")
            } catch let failure as ConfigurationLoader.Failure {
                for issue in failure.issues { print(issue.description) }
                let count = failure.issues.count
                print("\(self.file): \(count) error\(count == 1 ? "" : "s")")
                throw ExitCode(1)
            }
        }
    }

    struct Reference: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the configuration reference as a Markdown table (as in README.md).")

        func run() {
            print(GuardConfiguration.renderReference(), terminator: "")
        }
    }
}
