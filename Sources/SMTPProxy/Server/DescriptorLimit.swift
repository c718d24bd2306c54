// The open-file limit (RLIMIT_NOFILE), raised at start toward what the configured connection
// limits need, as HAProxy does: a client connection costs one descriptor, and one more while
// its session is connected to the backend (which the guard opens only when needed).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the configured limits need of descriptors, against what the process may have. A value:
/// `DescriptorLimit` reads and sets the real limits.
public struct DescriptorPlan: Equatable, Sendable {
    /// Kept for listeners, the state database, the event log, the admin API, policy sockets
    /// and firewall commands.
    public static let reserve: UInt64 = 128

    public var soft: UInt64
    public var hard: UInt64
    public var maxConnections: Int

    public init(soft: UInt64, hard: UInt64, maxConnections: Int) {
        self.soft = soft
        self.hard = hard
        self.maxConnections = maxConnections
    }

    /// Every client connection with its backend connection open, and the reserve.
    public var needed: UInt64 { 2 * UInt64(max(0, self.maxConnections)) + Self.reserve }

    /// The soft limit to set: what is needed, never more than the hard limit, never lowered.
    public var target: UInt64 { max(self.soft, min(self.needed, self.hard)) }

    public var raises: Bool { self.target > self.soft }

    /// Even at the hard limit, a full house of connected sessions would run out.
    public var hardTooLow: Bool { self.hard < self.needed }

    /// Idle clients (one descriptor each) that fit under the target.
    public var idleClientsThatFit: UInt64 { self.target > Self.reserve ? self.target - Self.reserve : 0 }

    /// What to say at start, if anything, and whether it is a warning.
    public var message: (warning: Bool, text: String)? {
        if self.hardTooLow {
            return (
                true,
                "the hard open-file limit (RLIMIT_NOFILE) is \(self.hard), below the \(self.needed) descriptors that "
                    + "smtp.max_connections \(self.maxConnections) may need (2 per session connected to the backend, 1 per idle "
                    + "client, + \(Self.reserve)); the soft limit is \(self.target), room for \(self.idleClientsThatFit) idle clients "
                    + "or \(self.idleClientsThatFit / 2) connected sessions; raise LimitNOFILE= in the systemd unit (or ulimit -Hn) "
                    + "or lower smtp.max_connections"
            )
        }
        if self.raises {
            return (
                false,
                "raised the soft open-file limit (RLIMIT_NOFILE) from \(self.soft) to \(self.target) for smtp.max_connections "
                    + "\(self.maxConnections) (hard limit \(self.hard))"
            )
        }
        return nil
    }
}

public enum DescriptorLimit {
    /// The process's soft and hard RLIMIT_NOFILE.
    public static func current() -> (soft: UInt64, hard: UInt64)? {
        var limit = rlimit()
        guard getrlimit(Self.resource, &limit) == 0 else { return nil }
        return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
    }

    /// Sets the soft limit (the hard one stays). Returns the errno text on failure.
    public static func setSoft(_ soft: UInt64) -> String? {
        var limit = rlimit()
        guard getrlimit(Self.resource, &limit) == 0 else { return String(cString: strerror(errno)) }
        limit.rlim_cur = rlim_t(soft)
        guard setrlimit(Self.resource, &limit) == 0 else { return String(cString: strerror(errno)) }
        return nil
    }

    /// Reads the limits, raises the soft one as the plan says, and returns the plan (nil if the
    /// limits cannot be read) with an error text if raising failed.
    public static func apply(maxConnections: Int) -> (plan: DescriptorPlan, error: String?)? {
        guard let (soft, hard) = Self.current() else { return nil }
        let plan = DescriptorPlan(soft: soft, hard: hard, maxConnections: maxConnections)
        guard plan.raises else { return (plan, nil) }
        return (plan, Self.setSoft(plan.target))
    }

    #if canImport(Glibc)
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resource = RLIMIT_NOFILE
    #endif
}
