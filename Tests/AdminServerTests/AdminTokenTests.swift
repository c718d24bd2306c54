// Where the admin token file goes, its mode, and a file others can read.

import AdminServer
import Foundation
import GuardCore
import Synchronization
import Testing

@Suite("Admin token file")
struct AdminTokenTests {
    @Test("beside the SQLite file; in $STATE_DIRECTORY when the state is not a file; the configured file wins")
    func placement() {
        var admin = AdminConfiguration()
        #expect(admin.effectiveTokenFile(statePath: "/var/lib/smtpguard/state.db") == "/var/lib/smtpguard/smtpguard-admin.token")
        #expect(admin.effectiveTokenFile(statePath: "smtpguard.db") == "smtpguard-admin.token")
        #expect(admin.effectiveTokenFile(statePath: "", stateDirectory: "/var/lib/smtpguard:/var/lib/other") == "/var/lib/smtpguard/smtpguard-admin.token")
        #expect(admin.effectiveTokenFile(statePath: "", stateDirectory: nil) == "smtpguard-admin.token")
        admin.tokenFile = "/etc/smtpguard/token"
        #expect(admin.effectiveTokenFile(statePath: "/var/lib/smtpguard/state.db") == "/etc/smtpguard/token")
    }

    @Test("created mode 0600 and read back; a token file other users can read is refused with what to do")
    func modes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sg-token-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let state = directory.appendingPathComponent("state.db").path
        let made = try AdminToken.resolve(AdminConfiguration(), statePath: state, create: true)
        let path = directory.appendingPathComponent("smtpguard-admin.token").path
        #expect(made.origin == .created(path))
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try AdminToken.resolve(AdminConfiguration(), statePath: state, create: true).value == made.value)

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect {
            _ = try AdminToken.resolve(AdminConfiguration(), statePath: state, create: true)
        } throws: { error in
            "\(error)".contains("mode 644 lets other users read it; chmod 600 \(path)")
        }
    }

    @Test("guards starting at the same moment all get the one token made first, never a half-written file")
    func simultaneousStarts() throws {
        for round in 0..<20 {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sg-token-race-\(getpid())-\(round)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let state = directory.appendingPathComponent("state.db").path
            let results = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                let outcome: String
                do { outcome = try AdminToken.resolve(AdminConfiguration(), statePath: state, create: true).value } catch { outcome = "error: \(error)" }
                results.withLock { $0.append(outcome) }
            }
            let tokens = results.withLock { $0 }
            #expect(tokens.count == 8 && Set(tokens).count == 1 && tokens[0].hasPrefix("sgt_"), "\(Set(tokens))")
            let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            #expect(left == ["smtpguard-admin.token"], "no temporary file is left: \(left)")
        }
    }
}
