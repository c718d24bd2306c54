// Every input kept in Fuzz/Corpus/<target>/ (seeds, and whatever a fuzzing run found that
// broke an invariant) is replayed through its target on every test run.

import Foundation
import FuzzTargets
import Testing

@Suite("Fuzz corpus regression")
struct FuzzRegressionTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Fuzz/Corpus").standardizedFileURL

    static func files(_ target: String) -> [URL] {
        let folder = self.corpus.appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { folder.appendingPathComponent($0) }
    }

    static func target(_ name: String) -> ([UInt8]) -> Void {
        switch name {
        case "session": return FuzzTargets.session
        case "lines": return FuzzTargets.lines
        case "sasl": return FuzzTargets.sasl
        case "proxy-header": return FuzzTargets.proxyHeader
        case "evtx": return FuzzTargets.evtx
        default: return FuzzTargets.replies
        }
    }

    @Test("every kept input passes its target's invariants", arguments: ["session", "lines", "sasl", "replies", "proxy-header", "evtx"])
    func replay(_ target: String) throws {
        let files = Self.files(target)
        #expect(files.count >= 3, "Fuzz/Corpus/\(target) holds \(files.count) inputs")
        let run = Self.target(target)
        for file in files {
            run(Array(try Data(contentsOf: file)))
        }
    }
}
