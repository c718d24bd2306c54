// Alerts to the system log: one datagram per alert or digest on the log socket (/dev/log),
// in the traditional BSD format with facility mail, as Postfix's own lines are. Sending never
// waits: a full or missing log socket loses the line (and says so once in the guard's log).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import GuardCore

public struct SyslogWriter: Sendable {
    public let socketPath: String
    public let tag: String

    public init(socketPath: String, tag: String = "smtpguard") {
        self.socketPath = socketPath
        self.tag = tag
    }

    /// The datagram for a delivery: `<PRI>Mmm dd hh:mm:ss tag[pid]: text`.
    public func line(for delivery: AlertDelivery, now: Timestamp) -> String {
        let facilityMail = 2
        let severity = delivery.severity == .critical ? 2 : 4
        let text = delivery.summary.logSafe
        return "<\(facilityMail * 8 + severity)>\(Self.bsdTime(now)) \(self.tag)[\(getpid())]: \(text)"
    }

    /// Sends one line; the error, if it could not be sent.
    public func send(_ line: String) -> String? {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return "cannot create a socket (errno \(errno))" }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(self.socketPath.utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return "\(self.socketPath): path too long" }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
            raw[path.count] = 0
        }
        let bytes = Array(line.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                sendto(fd, bytes, bytes.count, Int32(MSG_DONTWAIT), socketAddress, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard sent == bytes.count else { return "\(self.socketPath): \(String(cString: strerror(errno)))" }
        return nil
    }

    static func bsdTime(_ time: Timestamp) -> String {
        // "Nov 23 14:05:09" in UTC, from the ISO form the guard already writes.
        let iso = time.iso8601  // 2026-11-23T14:05:09.123Z
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let parts = Array(iso.utf8)
        guard parts.count >= 19, let month = Int(String(decoding: parts[5..<7], as: UTF8.self)), (1...12).contains(month),
            let day = Int(String(decoding: parts[8..<10], as: UTF8.self))
        else { return iso }
        let dayText = day < 10 ? " \(day)" : "\(day)"
        return "\(months[month - 1]) \(dayText) \(String(decoding: parts[11..<19], as: UTF8.self))"
    }
}
