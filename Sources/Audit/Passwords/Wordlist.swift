// A list of common passwords, one per line, as John the Ripper's password.lst (Debian's
// john-data): `#!comment:` lines and empty lines are skipped, repeated words kept once.

import Foundation

public struct Wordlist: Sendable {
    /// The file's name, for reports ("password.lst").
    public let name: String
    public let path: String
    /// The words in file order (most common first in password.lst).
    public let words: [String]
    private let lowercased: Set<String>

    /// Where Debian's john-data puts its list.
    public static let johnDefaultPath = "/usr/share/john/password.lst"

    public struct LoadError: Error, CustomStringConvertible {
        public let path: String
        public let why: String
        public var description: String { "cannot read the wordlist \(self.path): \(self.why)" }
    }

    public init(name: String, words: [String]) {
        self.init(name: name, path: name, words: words)
    }

    private init(name: String, path: String, words: [String]) {
        self.name = name
        self.path = path
        var seen: Set<String> = []
        self.words = words.filter { !$0.isEmpty && seen.insert($0).inserted }
        self.lowercased = Set(self.words.map { $0.lowercased() })
    }

    public static func load(_ path: String) throws(LoadError) -> Wordlist {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let why = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw LoadError(path: path, why: why)
        }
        var words: [String] = []
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            var bytes = line[...]
            if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
            if bytes.starts(with: Array("#!comment:".utf8)) { continue }
            words.append(String(decoding: bytes, as: UTF8.self))
        }
        return Wordlist(name: (path as NSString).lastPathComponent, path: path, words: words)
    }

    func containsIgnoringCase(_ lowercasedPassword: String) -> Bool { self.lowercased.contains(lowercasedPassword) }
}
