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
        @Option(name: .long, help: ArgumentHelp("Configuration file (YAML); its state.url, or else state.path, is used.", valueName: "file"))
        var config: String?

        @Option(name: .long, help: ArgumentHelp("The SQLite state file (overrides the configuration).", valueName: "path"))
        var state: String?

        /// The PostgreSQL URL when the configuration names one (and no --state is given).
        func url() throws -> String? {
            guard self.state == nil, let file = self.config else { return nil }
            do {
                let url = try ConfigurationLoader.load(path: file).state.url
                return url.isEmpty ? nil : url
            } catch let failure as ConfigurationLoader.Failure {
                throw StartupError("invalid configuration:\n\(failure)")
            }
        }

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
            if let url = try self.location.url() {
                let store = try PostgresStateStore(url: url, guardID: "db-status")
                defer { _ = store }
                let status: StoreStatus
                do {
                    status = try await store.status(now: SystemClock().now())
                } catch {
                    await store.close()
                    throw StartupError("\(error)")
                }
                await store.close()
                Self.show(status, name: store.url)
                return
            }
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
            Self.show(status, name: "\(path) (\(size / 1024) KiB)")
        }

        static func show(_ status: StoreStatus, name: String) {
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
            abstract: "Create the state file or bring its schema up to date.",
            discussion: "A running guard does the same at start; this is for preparing a file ahead of time.")

        @OptionGroup var location: Location

        func run() async throws {
            if let url = try self.location.url() {
                let store = try PostgresStateStore(url: url, guardID: "db-migrate")
                do {
                    let (before, after) = try await store.migrate()
                    await store.close()
                    print(before == after ? "\(store.url): schema version \(after), up to date" : "\(store.url): schema version \(before) → \(after)")
                } catch {
                    await store.close()
                    throw StartupError("\(error)")
                }
                return
            }
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
