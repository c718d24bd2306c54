// Starting programs (nft, ipset, iptables-restore, a ban command, journalctl) with
// posix_spawn: no shell, no run loop (Foundation's Process needs one, and its wakeup socket
// cannot be made in a network namespace whose loopback is down), descriptors not inherited.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct ChildProcess {
    public let pid: pid_t
    /// The read end of the child's standard output (or error), when captured.
    public let output: Int32

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts `executable` with `arguments`; its standard input is /dev/null, and standard output
    /// (`captureError` false) or standard error (`captureError` true) comes back through `output`.
    public static func spawn(_ executable: String, _ arguments: [String], captureError: Bool) throws(Failure) -> ChildProcess {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw Failure(description: "cannot make a pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], captureError ? 2 : 1)
        posix_spawn_file_actions_addopen(&actions, captureError ? 1 : 2, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        close(fds[1])
        guard status == 0 else {
            close(fds[0])
            throw Failure(description: "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        return ChildProcess(pid: pid, output: fds[0])
    }

    /// Runs a program to its end; returns its exit status and what it wrote to standard error.
    public static func run(_ executable: String, _ arguments: [String]) throws(Failure) -> (status: Int32, errors: String) {
        let child = try self.spawn(executable, arguments, captureError: true)
        let said = child.readAll(limit: 8192)
        return (child.wait(), said)
    }

    /// Runs a program to its end; returns its exit status and its standard output (at most
    /// `limit` bytes; standard error is discarded).
    public static func output(_ executable: String, _ arguments: [String], limit: Int = 256 << 20) throws(Failure) -> (status: Int32, output: String) {
        let child = try self.spawn(executable, arguments, captureError: false)
        let said = child.readAll(limit: limit)
        return (child.wait(), said)
    }

    /// Reads the captured output to its end (keeping at most `limit` bytes) and closes it.
    private func readAll(limit: Int) -> String {
        var said: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(self.output, $0.baseAddress, $0.count) }
            if n > 0 {
                if said.count < limit { said += buffer[0..<min(n, limit - said.count)] }
                continue
            }
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(self.output)
        return String(decoding: said, as: UTF8.self)
    }

    /// Waits for the child; its exit status (128 + signal when killed).
    @discardableResult
    public func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(self.pid, &status, 0) < 0 && errno == EINTR {}
        if status & 0x7F == 0 { return (status >> 8) & 0xFF }
        return 128 + (status & 0x7F)
    }

    /// The exit status if the child has ended, without waiting.
    public func exited() -> Int32? {
        var status: Int32 = 0
        let result = waitpid(self.pid, &status, WNOHANG)
        guard result == self.pid else { return nil }
        if status & 0x7F == 0 { return (status >> 8) & 0xFF }
        return 128 + (status & 0x7F)
    }

    /// The full path of a program: as given when it has a slash, else found in PATH, /usr/sbin, /sbin.
    public static func find(_ tool: String) -> String? {
        if tool.contains("/") { return access(tool, X_OK) == 0 ? tool : nil }
        let path = (getenv("PATH").map { String(cString: $0) } ?? "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
        for directory in path.split(separator: ":") where access("\(directory)/\(tool)", X_OK) == 0 { return "\(directory)/\(tool)" }
        return nil
    }
}
