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

    /// One step of a transcript: client bytes, or something else that happens.
    enum Step {
        case bytes([UInt8])
        case action(String)
    }

    /// Reads a .in file: `#!` lines set up the session, `#>` lines are events in order
    /// (`tls`: the client's TLS handshake completes; `pause`: nothing, but what follows is sent
    /// later; `fire TIMER`; `backend-close`;
    /// `backend-says CODE TEXT`; `client-close`), every other line is sent by the client
    /// with CRLF; `<CR>`, `<LF>`, `<NUL>` and `<xHH>` stand for those bytes, and a line ending
    /// in `<noeol>` is sent without its CRLF.
    static func play(_ input: String, byteByByte: Bool) -> String {
        var proxy = ProxyConfiguration()
        // Most transcripts are about AUTH itself, in plain text; the TLS ones say require_tls=on.
        proxy.requireTLS = false
        var client = "203.0.113.5"
        var implicitTLS = false
        var backend = ScriptedBackend()
        var steps: [Step] = []
        var current: [UInt8] = []
        var lines = input.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }  // the file's final newline is not a line
        for line in lines {
            if line.hasPrefix("#!") {
                let directive = line.dropFirst(2).trimmingCharacters(in: .whitespaces)
                let parts = directive.split(separator: "=", maxSplits: 1).map(String.init)
                // Anything that is not `word=value` is the transcript's description.
                guard parts.count == 2, parts[0].allSatisfy({ $0.isASCII && ($0.isLetter || $0 == "_" || $0 == "-") }) else { continue }
                switch parts[0] {
                case "identity": proxy.identity = IdentityForwarding(rawValue: parts[1])!
                case "auth_networks": proxy.authNetworks = NetworkList(parts[1].split(separator: ",").map { IPNetwork($0)! })
                case "client": client = parts[1]
                case "tls":
                    proxy.tls.certificate = parts[1] == "on" ? "guard.pem" : ""
                    proxy.tls.key = parts[1] == "on" ? "guard.key" : ""
                case "require_tls": proxy.requireTLS = parts[1] == "on"
                case "implicit_tls": implicitTLS = parts[1] == "on"
                case "backend_tls": proxy.backendTLS = BackendTLSMode(rawValue: parts[1])!
                case "max_message_size": proxy.maxMessageSize = Int(parts[1])!
                case "max_junk_commands": proxy.maxJunkCommands = Int(parts[1])!
                case "max_errors": proxy.maxErrors = Int(parts[1])!
                case "max_command_line": proxy.maxCommandLine = Int(parts[1])!
                case "max_data_line": proxy.maxDataLine = Int(parts[1])!
                case "backend":
                    for option in parts[1].split(separator: ",") {
                        switch option {
                        case "refuse-data": backend.refuseData = true
                        case "no-greeting": backend.noGreeting = true
                        case "no-starttls": backend.noSTARTTLS = true
                        case "silent-auth": backend.silentOnAuth = true
                        case "no-xclient": backend.xclientAllowed = false
                        default: Issue.record("unknown backend option \(option)")
                        }
                    }
                case "whole-only": break  // see wholeOnly(_:)
                default: Issue.record("unknown directive \(parts[0])")
                }
                continue
            }
            if line.hasPrefix("#>") {
                if !current.isEmpty { steps.append(.bytes(current)) }
                current = []
                steps.append(.action(line.dropFirst(2).trimmingCharacters(in: .whitespaces)))
                continue
            }
            var text = String(line)
            let noEOL = text.hasSuffix("<noeol>")
            if noEOL { text.removeLast(7) }
            current += Self.unescape(text) + (noEOL ? [] : [0x0D, 0x0A])
        }
        if !current.isEmpty { steps.append(.bytes(current)) }

        var policy = GuardPolicy()
        policy.bans.jitter = 0
        var driver = SessionDriver(proxy: proxy, policy: policy, client: client, implicitTLS: implicitTLS)
        driver.backend = backend
        driver.start()
        for step in steps {
            switch step {
            case .bytes(let bytes):
                if byteByByte { driver.clientByteByByte(bytes) } else { driver.client(bytes) }
            case .action(let action):
                let words = action.split(separator: " ", maxSplits: 1).map(String.init)
                switch words[0] {
                case "tls": driver.clientTLSHandshake()
                case "pause": break  // only separates what the client sends before and after
                case "fire":
                    guard let timer = SessionTimer.allCases.first(where: { "\($0)" == words[1] }) else {
                        Issue.record("unknown timer \(words[1])")
                        continue
                    }
                    driver.transcript.append("# timer \(timer) fires")
                    driver.fire(timer)
                case "backend-close":
                    driver.transcript.append("# the backend closes the connection")
                    driver.backendGoesAway()
                case "backend-says":
                    let reply = words[1]
                    driver.transcript.append("# the backend sends on its own: \(reply)")
                    driver.backendSends(SMTPReply(code: Int(reply.prefix(3))!, String(reply.dropFirst(4))))
                case "client-close":
                    driver.transcript.append("# the client closes the connection")
                    driver.clientGoesAway()
                default: Issue.record("unknown action \(action)")
                }
            }
        }
        return driver.transcript.joined(separator: "\n") + "\n"
    }

    static func unescape(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "<") {
            out += Array(rest[..<open].utf8)
            let tail = rest[open...]
            let escapes: [(String, UInt8)] = [("<CR>", 0x0D), ("<LF>", 0x0A), ("<NUL>", 0x00)]
            if let (token, byte) = escapes.first(where: { tail.hasPrefix($0.0) }) {
                out.append(byte)
                rest = tail.dropFirst(token.count)
            } else if tail.hasPrefix("<x"), tail.count >= 5, tail.dropFirst(4).first == ">",
                let byte = UInt8(tail.dropFirst(2).prefix(2), radix: 16)
            {
                out.append(byte)
                rest = tail.dropFirst(5)
            } else if tail.hasPrefix("<repeat "), let close = tail.firstIndex(of: ">") {
                // <repeat N TEXT>: TEXT N times (long lines).
                let spec = tail[tail.index(tail.startIndex, offsetBy: 8)..<close].split(separator: " ", maxSplits: 1)
                out += Array(repeating: Array(spec[1].utf8), count: Int(spec[0])!).flatMap { $0 }
                rest = tail[tail.index(after: close)...]
            } else {
                out.append(UInt8(ascii: "<"))
                rest = tail.dropFirst()
            }
        }
        return out + Array(rest.utf8)
    }

    /// Transcripts whose result depends on how the bytes are cut: pipelining violations are
    /// seen when the bytes arrive together, and are simply too late to matter byte by byte.
    static func wholeOnly(_ input: String) -> Bool {
        input.split(separator: "\n").contains { $0.hasPrefix("#! whole-only=") }
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
        // The guard never passes a bare CR or LF to the backend.
        for line in actual.split(separator: "\n") where line.hasPrefix("B< ") {
            #expect(!line.contains("<CR>") && !line.contains("<LF>"), "\(name): bare newline reached the backend: \(line)")
        }
        if !Self.wholeOnly(input) {
            let bytewise = Self.play(input, byteByByte: true)
            #expect(bytewise == expected, "transcript \(name) fed byte by byte differs from \(name).ref")
        }
    }

    @Test("at least the documented transcripts exist")
    func inventory() {
        for name in ["plain-success", "login-failure", "auth-errors", "pipelined-behind-auth", "weak-credential", "guest-denied", "cram-md5", "xclient", "not-auth-network", "smuggling", "refused-commands", "tarpit-and-ban"] {
            #expect(Self.names.contains(name), "\(name).in")
        }
        // The bad-input suite: every smuggling sequence of CVE-2023-51764/5/6, and the rest.
        let smuggling = ["lf-dot-lf", "lf-dot-crlf", "cr-dot-cr", "cr-dot-lf", "lf-dot-cr", "cr-dot-crlf", "crlf-dot-lf", "crlf-dot-cr", "crlf-nul-dot-crlf", "crlf-dot-nul-crlf", "crcrlf-dot-crcrlf", "crlf-dot-crcrlf"]
        for name in smuggling { #expect(Self.names.contains("smuggle-" + name), "smuggle-\(name).in") }
        #expect(Self.names.count >= 12 + 40, "\(Self.names.count) transcripts")
    }
}
