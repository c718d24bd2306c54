// One line of an audit report: a check, how it came out, why, and what to do about it.

public struct AuditFinding: Sendable, Equatable {
    public enum Status: String, Sendable, Comparable {
        case pass, info, warn, fail

        private var rank: Int {
            switch self {
            case .pass: 0
            case .info: 1
            case .warn: 2
            case .fail: 3
            }
        }
        public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
    }

    /// A stable identifier for programs (`banner`, `auth-before-tls`, `open-relay` …).
    public var check: String
    public var status: Status
    /// One line: what was found.
    public var detail: String
    /// What to change, for a warning or a failure.
    public var fix: String?

    public init(_ check: String, _ status: Status, _ detail: String, fix: String? = nil) {
        self.check = check
        self.status = status
        self.detail = detail
        self.fix = status == .pass || status == .info ? nil : fix
    }
}

extension Array where Element == AuditFinding {
    /// The worst status found (pass when there is nothing).
    public var worst: AuditFinding.Status { self.map(\.status).max() ?? .pass }

    /// 0 pass, 1 warnings, 2 failures.
    public var exitStatus: Int32 {
        switch self.worst {
        case .pass, .info: 0
        case .warn: 1
        case .fail: 2
        }
    }
}
