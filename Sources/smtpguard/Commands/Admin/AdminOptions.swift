// `smtpguard bans`, `events`, `stats` and `trusted`: a running guard's admin API from the
// command line. The guard's address and token come from its configuration (--config,
// $SMTPGUARD_CONFIG or /etc/smtpguard/smtpguard.yaml: admin.listen, admin.token or the token
// file), or from --admin / --token-file / SMTPGUARD_ADMIN_TOKEN.
// Tables for people; --json prints the API's own JSON for scripts. The answers are read as
// AdminServer's Codable values (AdminClient); this folder has one file per command group.

import AdminServer
import ArgumentParser
import Foundation
import GuardCore

struct AdminOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The guard's configuration file, for admin.listen and the token (default: $SMTPGUARD_CONFIG, else /etc/smtpguard/smtpguard.yaml when it exists).", valueName: "file"))
    var config: String?

    static let installedConfiguration = "/etc/smtpguard/smtpguard.yaml"

    /// --config, else $SMTPGUARD_CONFIG, else the installed configuration when there is one.
    var configurationFile: String? {
        if let config = self.config { return config }
        if let variable = ProcessInfo.processInfo.environment["SMTPGUARD_CONFIG"], !variable.isEmpty { return variable }
        return FileManager.default.fileExists(atPath: Self.installedConfiguration) ? Self.installedConfiguration : nil
    }

    @Option(name: .long, help: ArgumentHelp("The guard's admin API, HOST:PORT or a URL (default: admin.listen).", valueName: "address"))
    var admin: String?

    @Option(name: .long, help: ArgumentHelp("File holding the admin token (default: admin.token, else the guard's token file). SMTPGUARD_ADMIN_TOKEN also works.", valueName: "file"))
    var tokenFile: String?

    @Flag(name: .long, help: "Print the API's JSON instead of a table.")
    var json = false

    func client() throws -> AdminClient {
        let configuration = try CommandSupport.loadFile(self.configurationFile)
        let listen = self.admin ?? configuration.admin.listen
        guard !listen.isEmpty else { throw ValidationError("admin.listen is empty in the configuration: the admin API is off; give --admin HOST:PORT") }
        guard let base = AdminClient.baseURL(listen: listen) else { throw ValidationError("--admin: expected HOST:PORT or http://HOST:PORT, got \"\(listen)\"") }
        let token: String
        if let value = ProcessInfo.processInfo.environment["SMTPGUARD_ADMIN_TOKEN"], !value.isEmpty {
            token = value
        } else {
            var admin = configuration.admin
            if let file = self.tokenFile {
                admin.token = ""
                admin.tokenFile = file
            }
            do {
                token = try AdminToken.resolve(admin, statePath: configuration.state.url.isEmpty ? configuration.state.path : "", create: false).value
            } catch {
                throw StartupError("\(error)")
            }
        }
        return AdminClient(base: base, token: token)
    }
}

/// How the commands write the API's values for people.
enum AdminText {
    /// `2026-11-23T05:04:29.861Z` → `2026-11-23 05:04:29`.
    static func time(_ text: String?) -> String {
        let text = text ?? ""
        guard text.count >= 19 else { return text }
        return String(text.prefix(19)).replacingOccurrences(of: "T", with: " ")
    }
}
