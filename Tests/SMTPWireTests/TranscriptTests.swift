// Golden transcripts, in the way Postfix keeps .in / .ref pairs: each Transcripts/NAME.in
// holds what a client sends (all at once, as a pipelining client would), NAME.ref what the
// client is told ("S: "), what the backend receives ("B< ") and what the guard decides
// ("# "). Every transcript is also replayed one byte at a time, with the same result.
// UPDATE_TRANSCRIPTS=1 swift test rewrites the .ref files (review the diff!).

import Foundation
import GuardCore
import Testing

@testable import SMTPWire

@Suite("Golden SMTP transcripts")
struct TranscriptTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Transcripts")

    static var names: [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return files.filter { $0.hasSuffix(".in") }.map { String($0.dropLast(3)) }.sorted()
    }

    static func play(_ input: String, byteByByte: Bool) -> String {
        var proxy = ProxyConfiguration()
        var client = "203.0.113.5"
        var payload = ""
        for line in input.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("#!") {
                let directive = line.dropFirst(2).trimmingCharacters(in: .whitespaces)
                let parts = directive.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { continue }
                switch parts[0] {
                case "identity": proxy.identity = IdentityForwarding(rawValue: parts[1])!
                case "auth_networks": proxy.authNetworks = NetworkList(parts[1].split(separator: ",").map { IPNetwork($0)! })
                case "client": client = parts[1]
                default: Issue.record("unknown directive \(parts[0])")
                }
                continue
            }
            payload += line.replacingOccurrences(of: "<LF>", with: "\n").replacingOccurrences(of: "<CR>", with: "\r") + "\r\n"
        }
        payload = String(payload.dropLast(1))  // the file's final newline is not a line ("\r\n" is one Character)
        var policy = GuardPolicy()
        policy.bans.jitter = 0
        var driver = SessionDriver(proxy: proxy, policy: policy, client: client)
        driver.start()
        if byteByByte { driver.clientByteByByte(payload) } else { driver.client(payload) }
        return driver.transcript.joined(separator: "\n") + "\n"
    }

    @Test("transcript", arguments: TranscriptTests.names)
    func transcript(_ name: String) throws {
        let input = try String(contentsOf: Self.folder.appendingPathComponent(name + ".in"), encoding: .utf8)
        let refURL = Self.folder.appendingPathComponent(name + ".ref")
        let actual = Self.play(input, byteByByte: false)
        if ProcessInfo.processInfo.environment["UPDATE_TRANSCRIPTS"] == "1" {
            try actual.write(to: refURL, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: refURL, encoding: .utf8)
        #expect(actual == expected, "transcript \(name) differs from \(name).ref")
        let bytewise = Self.play(input, byteByByte: true)
        #expect(bytewise == expected, "transcript \(name) fed byte by byte differs from \(name).ref")
    }

    @Test("at least the documented transcripts exist")
    func inventory() {
        for name in ["plain-success", "login-failure", "auth-errors", "pipelined-behind-auth", "weak-credential", "guest-denied", "cram-md5", "xclient", "not-auth-network", "smuggling", "refused-commands", "tarpit-and-ban"] {
            #expect(Self.names.contains(name), "\(name).in")
        }
    }
}
