// How far the watcher read each source, kept in a small text file so that a restart resumes
// where the last run stopped: a file's device, inode and offset (a rotated file is recognised
// by its inode), a directory's current file, journald's cursor. Written whole to a temporary
// file and renamed, so a crash leaves the old book or the new one, never half of one.
//
//   file<TAB>/var/log/mail.log<TAB>device<TAB>inode<TAB>offset
//   dir<TAB>/var/log/exchange<TAB>device<TAB>inode<TAB>offset<TAB>RECV2026112302-1.LOG
//   journald<TAB>postfix.service,dovecot.service<TAB>cursor

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct PositionBook: Sendable, Equatable {
    public var files: [String: FilePosition] = [:]
    public var directories: [String: (name: String, position: FilePosition)] = [:]
    public var cursors: [String: String] = [:]

    public init() {}

    public static func == (a: PositionBook, b: PositionBook) -> Bool {
        a.files == b.files && a.cursors == b.cursors && a.directories.count == b.directories.count
            && a.directories.allSatisfy { key, value in b.directories[key].map { $0.name == value.name && $0.position == value.position } ?? false }
    }

    public struct Damaged: Error, CustomStringConvertible {
        public var path: String
        public var line: Int
        public var description: String { "\(self.path) line \(self.line): not a position line; delete the file to start each log at its end" }
    }

    /// Reads a book; a missing file is an empty book.
    public static func load(path: String) throws(Damaged) -> PositionBook {
        var book = PositionBook()
        guard let text = readWholeFile(path) else { return book }
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            func position(_ at: Int) -> FilePosition? {
                guard fields.count > at + 2, let device = UInt64(fields[at]), let inode = UInt64(fields[at + 1]), let offset = Int64(fields[at + 2]) else { return nil }
                return FilePosition(device: device, inode: inode, offset: offset)
            }
            switch fields.first {
            case "file":
                guard let found = position(2) else { throw Damaged(path: path, line: index + 1) }
                book.files[fields[1]] = found
            case "dir":
                guard let found = position(2), fields.count == 6 else { throw Damaged(path: path, line: index + 1) }
                book.directories[fields[1]] = (fields[5], found)
            case "journald":
                guard fields.count == 3 else { throw Damaged(path: path, line: index + 1) }
                book.cursors[fields[1]] = fields[2]
            default:
                throw Damaged(path: path, line: index + 1)
            }
        }
        return book
    }

    public var text: String {
        var lines: [String] = []
        for (path, p) in self.files.sorted(by: { $0.key < $1.key }) { lines.append("file\t\(path)\t\(p.device)\t\(p.inode)\t\(p.offset)") }
        for (path, d) in self.directories.sorted(by: { $0.key < $1.key }) {
            lines.append("dir\t\(path)\t\(d.position.device)\t\(d.position.inode)\t\(d.position.offset)\t\(d.name)")
        }
        for (key, cursor) in self.cursors.sorted(by: { $0.key < $1.key }) { lines.append("journald\t\(key)\t\(cursor)") }
        return lines.map { $0 + "\n" }.joined()
    }

    /// Writes the book atomically; returns the error text, or nil.
    public func save(path: String) -> String? {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return "\(temporary): \(String(cString: strerror(errno)))" }
        let bytes = Array(self.text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 {
                let reason = String(cString: strerror(errno))
                close(fd)
                return "\(temporary): \(reason)"
            }
            written += n
        }
        close(fd)
        guard rename(temporary, path) == 0 else { return "\(path): \(String(cString: strerror(errno)))" }
        return nil
    }
}

/// A whole (small) file as text, or nil when it cannot be read.
func readWholeFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}
