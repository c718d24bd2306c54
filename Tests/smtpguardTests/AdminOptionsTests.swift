// Which configuration the admin commands (bans, events, stats, trusted) read when --config is
// not given: $SMTPGUARD_CONFIG, else the installed /etc/smtpguard/smtpguard.yaml.

import Foundation
import Testing

@testable import smtpguard

@Suite("Admin command options", .serialized)
struct AdminOptionsTests {
    @Test("without --config the admin commands read $SMTPGUARD_CONFIG; --config wins over it")
    func configurationFromTheEnvironment() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-admin-options-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let fromEnvironment = folder.appendingPathComponent("env.yaml").path
        let fromFlag = folder.appendingPathComponent("flag.yaml").path
        try "admin:\n  listen: 127.0.0.1:18101\n  token: 0123456789abcdef0123456789abcdef\n".write(toFile: fromEnvironment, atomically: true, encoding: .utf8)
        try "admin:\n  listen: 127.0.0.1:18102\n  token: 0123456789abcdef0123456789abcdef\n".write(toFile: fromFlag, atomically: true, encoding: .utf8)
        setenv("SMTPGUARD_CONFIG", fromEnvironment, 1)
        defer { unsetenv("SMTPGUARD_CONFIG") }
        let plain = try AdminOptions.parse([])
        #expect(plain.configurationFile == fromEnvironment)
        #expect("\(try plain.client().base)".contains("18101"))
        let flagged = try AdminOptions.parse(["--config", fromFlag])
        #expect(flagged.configurationFile == fromFlag)
        #expect("\(try flagged.client().base)".contains("18102"))
        unsetenv("SMTPGUARD_CONFIG")
        let none = try AdminOptions.parse([])
        let installed = FileManager.default.fileExists(atPath: AdminOptions.installedConfiguration)
        #expect(none.configurationFile == (installed ? AdminOptions.installedConfiguration : nil))
    }
}
