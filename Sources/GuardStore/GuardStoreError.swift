// Why a store cannot be used, with a code callers can match (the shape of postgres-nio's
// PSQLError). `description` is for the administrator: the file or the URL (its password
// replaced), what was being done, and the cause in words; never a query's text or values,
// never a secret. The cause's own debug text (a PSQLError's, which holds the query) is kept
// apart, in `debugDescription`, for debug logs only.

public struct GuardStoreError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Sendable {
            case invalidConfiguration = "invalid_configuration"
            case open
            case connect
            case timeout
            case schemaTooNew = "schema_too_new"
            case damaged
            case read
            case write
        }
        let base: Base

        /// `state.url` or `state.path` cannot name a store.
        public static let invalidConfiguration = Self(base: .invalidConfiguration)
        /// The state file cannot be opened or set up.
        public static let open = Self(base: .open)
        /// The database refused the connection or could not be reached.
        public static let connect = Self(base: .connect)
        /// No answer within `state.timeout`.
        public static let timeout = Self(base: .timeout)
        /// The schema is newer than this smtpguard knows.
        public static let schemaTooNew = Self(base: .schemaTooNew)
        /// The state file is damaged.
        public static let damaged = Self(base: .damaged)
        /// A read failed.
        public static let read = Self(base: .read)
        /// A write failed (nothing of the batch was written).
        public static let write = Self(base: .write)

        public var description: String { self.base.rawValue }
    }

    public var code: Code
    /// For the administrator (logs, `smtpguard db`, the start's error).
    public var message: String
    /// The cause's own text, which may hold a query: for debug logs only.
    public var underlying: String?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying.map { String(reflecting: $0) }
    }

    public var description: String { self.message }

    public var debugDescription: String {
        "GuardStoreError(\(self.code)): \(self.message)" + (self.underlying.map { " – \($0)" } ?? "")
    }
}
