// Follows the newest file of a directory whose name matches a pattern (Exchange writes a new
// protocol log every hour or day: RECV2026112302-1.LOG). When a newer file appears, the
// current one is read to its end and the new one is followed from its start.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class DirectoryFollower {
    public let directory: String
    public let pattern: String
    private var current: FileFollower?
    private var resume: (name: String, position: FilePosition)?
    private var startAtEnd: Bool
    private var reportedMissing = false

    public init(directory: String, pattern: String, resume: (name: String, position: FilePosition)?, startAtEnd: Bool) {
        self.directory = directory
        self.pattern = pattern
        self.resume = resume
        self.startAtEnd = startAtEnd
    }

    /// The file followed now and the position in it.
    public var position: (name: String, position: FilePosition)? {
        guard let current, let position = current.position else { return nil }
        return (String(current.path.dropFirst(self.directory.count + 1)), position)
    }

    @discardableResult
    public func poll(line: (ArraySlice<UInt8>) -> Void, notice: (FollowNotice) -> Void) -> Int {
        var total = self.current?.poll(line: line, notice: notice) ?? 0
        guard let newest = self.newestFile(notice: notice) else { return total }
        let path = self.directory + "/" + newest
        if self.current?.path != path {
            // Finish the old file, then switch.
            if let current = self.current { total += current.poll(line: line, notice: notice) }
            var resume: FilePosition?
            if let saved = self.resume, saved.name == newest { resume = saved.position }
            self.resume = nil
            self.current = FileFollower(path: path, resume: resume, startAtEnd: self.current == nil && self.startAtEnd)
            self.startAtEnd = false
            total += self.current!.poll(line: line, notice: notice)
        }
        return total
    }

    /// The matching file whose name sorts last (Exchange's names carry the date and hour).
    private func newestFile(notice: (FollowNotice) -> Void) -> String? {
        guard let dir = opendir(self.directory) else {
            if !self.reportedMissing {
                self.reportedMissing = true
                notice(.missing(path: self.directory, reason: String(cString: strerror(errno))))
            }
            return nil
        }
        self.reportedMissing = false
        defer { closedir(dir) }
        var best: String?
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard name != ".", name != "..", fnmatch(self.pattern, name, 0) == 0 else { continue }
            var info = stat()
            guard stat(self.directory + "/" + name, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            if best == nil || name > best! { best = name }
        }
        return best
    }
}
