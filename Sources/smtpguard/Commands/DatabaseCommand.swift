// `smtpguard db status | migrate`: the state file, for operators.

import ArgumentParser
import Foundation
import GuardCore
import GuardStore

struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Show or migrate the state file (bans, attempts, alerts).",
        subcommands: [Status.self, Migrate.self]
    )

    struct Location: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp("Configuration file (YAML); its state.path is used.", valueName: "file"))
        var config: String?

        @Option(name: .long, help: ArgumentHelp("The state file (overrides the configuration).", valueName: "path"))
        var state: String?

        func path() throws -> String {
            var path = GuardConfiguration().state.path
            if let file = self.config {
                do {
                    path = try ConfigurationLoader.load(path: file).state.path
                } catch let failure as ConfigurationLoader.Failure {
                    throw StartupError("invalid configuration:\n\(failure)")
                }
            }
            if let state = self.state { path = state }
            guard !path.isEmpty else { throw StartupError("state.path is empty: this guard keeps its state in memory only") }
            return path
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the state file: schema version, bans in force, attempts and alerts kept.",
            discussion: "Changes nothing (no migration). Exit status 1 when the file cannot be used.")

        @OptionGroup var location: Location

        func run() async throws {
            let path = try self.location.path()
            guard FileManager.default.fileExists(atPath: path) else { throw StartupError("state file \(path): no such file (a guard creates it on its first run)") }
            let store: SQLiteStateStore
            do {
                store = try await SQLiteStateStore.open(path: path, migrate: false)
            } catch {
                throw StartupError("\(error)")
            }
            let status = try await store.status(now: SystemClock().now())
            await store.close()
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            print("state file:     \(path) (\(size / 1024) KiB, journal \(status.journalMode))")
            let behind = status.schemaVersion < status.knownVersion ? " — run `smtpguard db migrate` (a guard does it at start)" : ""
            print("schema version: \(status.schemaVersion) of \(status.knownVersion)\(behind)")
            print("bans in force:  \(status.activeBans)")
            print("attempts kept:  \(status.attempts)\(status.oldestAttempt.map { ", \($0.iso8601) … " } ?? "")\(status.newestAttempt?.iso8601 ?? "")")
            print("alerts kept:    \(status.alerts)")
        }
    }

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the state file or bring its schema up to date.",
            discussion: "A running guard does the same at start; this is for preparing a file ahead of time.")

        @OptionGroup var location: Location

        func run() async throws {
            let path = try self.location.path()
            do {
                var before = 0
                if FileManager.default.fileExists(atPath: path) {
                    let existing = try await SQLiteStateStore.open(path: path, migrate: false)
                    before = (try? await existing.schemaVersion) ?? 0
                    await existing.close()
                }
                let store = try await SQLiteStateStore.open(path: path)
                let after = try await store.schemaVersion
                await store.close()
                print(before == after ? "state file \(path): schema version \(after), up to date" : "state file \(path): schema version \(before) → \(after)")
            } catch let error as StoreError {
                throw StartupError(error.description)
            }
        }
    }
}
