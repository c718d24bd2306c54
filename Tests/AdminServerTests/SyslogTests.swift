import AdminServer
import Foundation
import GuardCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct SyslogTests {
    /// A datagram socket standing in for /dev/log.
    func listen(at path: String) throws -> Int32 {
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(fd >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        return fd
    }

    @Test func alertsReachTheLogSocketWithFacilityMail() throws {
        let path = NSTemporaryDirectory() + "smtpguard-syslog-\(getpid()).sock"
        let fd = try self.listen(at: path)
        defer {
            close(fd)
            unlink(path)
        }
        let writer = SyslogWriter(socketPath: path)
        let alert = Alert(
            kind: .weakCredentialAccepted, severity: .critical, time: Timestamp(seconds: 1_795_435_509), username: "admin", client: nil,
            message: "weak credential accepted for admin\nforged line")
        let line = writer.line(for: .single(alert), now: Timestamp(seconds: 1_795_435_509))
        #expect(writer.send(line) == nil)
        var buffer = [UInt8](repeating: 0, count: 2048)
        let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        let received = String(decoding: buffer.prefix(max(0, count)), as: UTF8.self)
        // <18> = facility mail (2) × 8 + severity critical (2); the time in the BSD form.
        #expect(received.hasPrefix("<18>Nov 23 "))
        #expect(received.contains(" smtpguard[\(getpid())]: alert weak_credential_accepted: weak credential accepted for admin\\nforged line"))
        #expect(!received.contains("\n"), "a message can never split the line")
    }

    @Test func aMissingLogSocketIsAnErrorNotAWait() {
        let writer = SyslogWriter(socketPath: "/nonexistent/smtpguard/log")
        #expect(writer.send("<12>x") != nil)
    }
}
