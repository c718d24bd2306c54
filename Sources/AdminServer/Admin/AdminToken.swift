// The admin API's bearer token: `admin.token` when configured, else the token file, which
// the first start creates (mode 0600) with a new random token. The token is shown once, on a
// terminal, when it is made; it is never written to a log.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import GuardCore

public struct AdminToken: Sendable {
    public enum Origin: Sendable, Equatable {
        case configuration
        case file(String)
        case created(String)
    }

    public let value: String
    public let origin: Origin

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The token of a guard configured so; the file is created when `create` is true.
    public static func resolve(_ configuration: AdminConfiguration, statePath: String, create: Bool) throws -> AdminToken {
        if !configuration.token.isEmpty { return AdminToken(value: configuration.token, origin: .configuration) }
        let path = configuration.effectiveTokenFile(
            statePath: statePath, stateDirectory: getenv("STATE_DIRECTORY").map { String(cString: $0) })
        if let text = try self.read(path) {
            return AdminToken(value: text, origin: .file(path))
        }
        guard create else {
            throw Failure(description: "no admin token: \(path) does not exist (the guard creates it on its first start; or set admin.token)")
        }
        let token = self.generate()
        guard try self.write(token, to: path) else {
            // Another guard sharing the state directory made it first: its token is the one.
            guard let text = try self.read(path) else { throw Failure(description: "admin token file \(path): appeared and went away while being created") }
            return AdminToken(value: text, origin: .file(path))
        }
        return AdminToken(value: token, origin: .created(path))
    }

    /// 32 random bytes in hex, with a prefix that tells what it is when found lying around.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return "sgt_" + Hex.string((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// The token in `path`, nil when there is no such file.
    static func read(_ path: String) throws -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw Failure(description: "admin token file \(path): cannot be read (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_mode & 0o077 != 0 {
            // Like ssh with a private key: a token others can read is not used.
            throw Failure(
                description: "admin token file \(path): mode \(String(info.st_mode & 0o777, radix: 8)) lets other users read it; "
                    + "chmod 600 \(path) (or delete it to have a new one made)")
        }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = Glibc.read(fd, &bytes, bytes.count)
        guard count >= 0 else { throw Failure(description: "admin token file \(path): cannot be read (\(String(cString: strerror(errno))))") }
        let text = String(decoding: bytes.prefix(count), as: UTF8.self).trimmingWhitespace
        guard text.count >= 16, !text.contains(where: { $0.isWhitespace }) else {
            throw Failure(description: "admin token file \(path): expected one token of at least 16 characters on one line; delete the file to have a new one made")
        }
        return text
    }

    /// Writes the token whole to a file of its own, then links it into place, so that a
    /// guard starting at the same moment never reads a half-written file. False when `path`
    /// already exists (another guard made it first).
    static func write(_ token: String, to path: String) throws -> Bool {
        let temporary = "\(path).\(getpid())-\(UInt32.random(in: 0...UInt32.max)).new"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "admin token file \(path): cannot be created (\(String(cString: strerror(errno))))") }
        defer { unlink(temporary) }
        let bytes = Array((token + "\n").utf8)
        let written = Glibc.write(fd, bytes, bytes.count) == bytes.count && fsync(fd) == 0
        let writeError = errno
        close(fd)
        guard written else { throw Failure(description: "admin token file \(path): cannot be written (\(String(cString: strerror(writeError))))") }
        guard link(temporary, path) == 0 else {
            if errno == EEXIST { return false }
            throw Failure(description: "admin token file \(path): cannot be created (\(String(cString: strerror(errno))))")
        }
        return true
    }
}

extension String {
    var trimmingWhitespace: String {
        var text = Substring(self)
        while text.first?.isWhitespace == true { text.removeFirst() }
        while text.last?.isWhitespace == true { text.removeLast() }
        return String(text)
    }
}
