// The built-in formats by name, as `watch.sources` and `--format` select them.

public enum LogFormats {
    public static let builtIn = ["postfix", "dovecot", "exim", "exchange", "events", "windows"]
    public static let names = builtIn + ["patterns"]

    /// A fresh format (each source keeps its own: Exchange follows sessions).
    public static func make(_ name: String, patterns: [String]) throws -> any LogFormat {
        switch name {
        case "postfix": return PostfixFormat()
        case "dovecot": return DovecotFormat()
        case "exim": return EximFormat()
        case "exchange": return ExchangeFormat()
        case "events": return EventsFormat()
        case "windows": return WindowsFormat()
        case "patterns": return try PatternFormat(patterns)
        default: throw UnknownFormat(name: name)
        }
    }

    public struct UnknownFormat: Error, CustomStringConvertible {
        public var name: String
        public var description: String { "unknown log format \"\(self.name)\" (known: \(LogFormats.names.joined(separator: ", ")))" }
    }
}
