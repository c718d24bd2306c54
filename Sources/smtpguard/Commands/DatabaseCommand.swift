// `smtpguard db status | migrate`: the state store (SQLite file or PostgreSQL), for operators.

import ArgumentParser
import Foundation
import GuardCore
import GuardStore

struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Show or migrate the state store (bans, attempts, alerts).",
        subcommands: [Status.self, Migrate.self]
    )

    struct Location: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp("Configuration file (YAML); its state.url, or else state.path, is used.", valueName: "file"))
        var config: String?

        @Option(name: .long, help: ArgumentHelp("The SQLite state file (overrides the configuration).", valueName: "path"))
        var state: String?

        /// Opens the configured store without migrating it, runs `body`, and closes it whatever
        /// happens. `mustExist`: a missing SQLite file is an error rather than created.
        func withStore<T>(mustExist: Bool, _ body: (any StateStore, String) async throws -> T) async throws -> T {
            var settings = GuardConfiguration().state
            if let file = self.config {
                do {
                    settings = try ConfigurationLoader.load(path: file).state
                } catch let failure as ConfigurationLoader.Failure {
                    throw StartupError("invalid configuration:\n\(failure)")
                }
            }
            /// `body`, then the store closed whatever happens.
            func serve(_ store: any StateStore, _ name: String) async throws -> T {
                do {
                    let result = try await body(store, name)
                    await store.close()
                    return result
                } catch {
                    await store.close()
                    throw StartupError("\(error)")
                }
            }
            do {
                if self.state == nil, !settings.url.isEmpty {
                    let postgres = try PostgresStateStore(url: settings.url, guardID: "smtpguard-db", timeout: settings.timeout)
                    return try await postgres.running { try await serve(postgres, postgres.url) }
                }
                let path = self.state ?? settings.path
                guard !path.isEmpty else { throw StartupError("state.path is empty: this guard keeps its state in memory only") }
                if mustExist, !FileManager.default.fileExists(atPath: path) {
                    throw StartupError("state file \(path): no such file (a guard creates it on its first run)")
                }
                return try await serve(try await SQLiteStateStore.open(path: path, migrate: false), "state file \(path)")
            } catch let error as GuardStoreError {
                throw StartupError(error.description)
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the state store: schema version, bans in force, attempts and alerts kept.",
            discussion: "Changes nothing (no migration). Exit status 1 when the store cannot be used.")

        @OptionGroup var location: Location

        func run() async throws {
            let (status, name) = try await self.location.withStore(mustExist: true) { store, name in
                (try await store.status(now: SystemClock().now()), name)
            }
            print("state:          \(name), \(status.journalMode)")
            let behind = status.schemaVersion < status.knownVersion ? " — run `smtpguard db migrate` (a guard does it at start)" : ""
            print("schema version: \(status.schemaVersion) of \(status.knownVersion)\(behind)")
            print("bans in force:  \(status.activeBans)")
            print("attempts kept:  \(status.attempts)\(status.oldestAttempt.map { ", \($0.iso8601) … " } ?? "")\(status.newestAttempt?.iso8601 ?? "")")
            print("alerts kept:    \(status.alerts)")
        }
    }

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the state store or bring its schema up to date.",
            discussion: "A running guard does the same at start; this is for preparing a store ahead of time.")

        @OptionGroup var location: Location

        func run() async throws {
            let (versions, name) = try await self.location.withStore(mustExist: false) { store, name in
                (try await store.migrate(), name)
            }
            let (before, after) = versions
            print(before == after ? "\(name): schema version \(after), up to date" : "\(name): schema version \(before) → \(after)")
        }
    }
}
