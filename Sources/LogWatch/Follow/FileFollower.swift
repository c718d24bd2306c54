// Follows one log file by polling: reads what was appended since the last poll, and notices
// rotation (the name now points at another file: the old one is read to its end first, then
// the new one from its start), truncation (the file got shorter: read again from its start),
// and a file that disappears and comes back (read from the start of the new one). Lines go
// through a LineSplitter, so a line split across two reads arrives whole.
//
// The position (device, inode, offset of the last whole line) is what `watch` saves to resume
// after a restart without reading a line twice or missing one.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a follower is in a file.
public struct FilePosition: Sendable, Equatable, Codable {
    public var device: UInt64
    public var inode: UInt64
    public var offset: Int64
    public init(device: UInt64, inode: UInt64, offset: Int64) {
        self.device = device
        self.inode = inode
        self.offset = offset
    }
}

/// Something a follower noticed, for the log.
public enum FollowNotice: Sendable, Equatable {
    case opened(path: String, offset: Int64)
    case rotated(path: String)
    case truncated(path: String)
    case missing(path: String, reason: String)
}

public final class FileFollower {
    public let path: String
    private var fd: Int32 = -1
    private var device: UInt64 = 0
    private var inode: UInt64 = 0
    private var offset: Int64 = 0
    private var splitter: LineSplitter
    private var resume: FilePosition?
    private var startAtEnd: Bool
    private var reportedMissing = false
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    /// `resume`: a saved position (used when it is the same file and not past its end).
    /// `startAtEnd`: with no saved position, skip what the file holds at the first open (a
    /// file that appears later, or replaces a rotated one, is always read from its start).
    public init(path: String, resume: FilePosition?, startAtEnd: Bool, maxLineLength: Int = 16 * 1024) {
        self.path = path
        self.resume = resume
        self.startAtEnd = startAtEnd
        self.splitter = LineSplitter(maxLineLength: maxLineLength)
    }

    deinit {
        if self.fd >= 0 { close(self.fd) }
    }

    /// The position of the last whole line read, to save.
    public var position: FilePosition? {
        guard self.fd >= 0 else { return nil }
        return FilePosition(device: self.device, inode: self.inode, offset: self.offset - Int64(self.splitter.pendingCount))
    }

    public var truncatedLines: Int { self.splitter.truncatedLines }

    /// Reads everything new; calls `line` for each whole line and `notice` for what changed.
    /// Returns the number of bytes read.
    @discardableResult
    public func poll(line: (ArraySlice<UInt8>) -> Void, notice: (FollowNotice) -> Void) -> Int {
        var total = 0
        if self.fd < 0 && !self.open(notice: notice) { return 0 }
        total += self.drain(line: line)
        // Truncated in place (copytruncate): start again from the top.
        var info = stat()
        if fstat(self.fd, &info) == 0, Int64(info.st_size) < self.offset {
            notice(.truncated(path: self.path))
            self.offset = 0
            self.splitter.reset()
            total += self.drain(line: line)
        }
        // Renamed away or deleted: finish the old file, then take the new one from its start.
        var named = stat()
        let exists = stat(self.path, &named) == 0
        if !exists || UInt64(named.st_dev) != self.device || UInt64(named.st_ino) != self.inode {
            total += self.drain(line: line)
            self.splitter.flush(line: line)
            close(self.fd)
            self.fd = -1
            self.startAtEnd = false
            self.resume = nil
            if exists {
                notice(.rotated(path: self.path))
                if self.open(notice: notice) { total += self.drain(line: line) }
            }
        }
        return total
    }

    private func open(notice: (FollowNotice) -> Void) -> Bool {
        let fd = Glibc.open(self.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if !self.reportedMissing {
                self.reportedMissing = true
                notice(.missing(path: self.path, reason: String(cString: strerror(errno))))
            }
            // A file that appears later is new: read all of it.
            self.startAtEnd = false
            return false
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            close(fd)
            return false
        }
        self.reportedMissing = false
        self.fd = fd
        self.device = UInt64(info.st_dev)
        self.inode = UInt64(info.st_ino)
        self.splitter.reset()
        if let resume = self.resume, resume.device == self.device, resume.inode == self.inode, resume.offset <= Int64(info.st_size) {
            self.offset = resume.offset
        } else if self.startAtEnd {
            self.offset = Int64(info.st_size)
        } else {
            self.offset = 0
        }
        self.resume = nil
        self.startAtEnd = false
        notice(.opened(path: self.path, offset: self.offset))
        return true
    }

    private func drain(line: (ArraySlice<UInt8>) -> Void) -> Int {
        var total = 0
        while true {
            let count = self.buffer.withUnsafeMutableBytes { pread(self.fd, $0.baseAddress, $0.count, off_t(self.offset)) }
            guard count > 0 else { return total }
            self.offset += Int64(count)
            total += count
            self.splitter.feed(self.buffer[0..<count], line: line)
        }
    }
}
