// Reads lines from standard input (or any descriptor) without blocking: the descriptor is
// made non-blocking and polled like the files, so the watcher stops at once on a signal.
// At end of input the follower says so; `watch` with only standard input then stops.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class StreamFollower {
    public let fd: Int32
    public private(set) var ended = false
    private var splitter: LineSplitter
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    public init(fd: Int32 = 0, maxLineLength: Int = 16 * 1024) {
        self.fd = fd
        self.splitter = LineSplitter(maxLineLength: maxLineLength)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    public var truncatedLines: Int { self.splitter.truncatedLines }

    @discardableResult
    public func poll(line: (ArraySlice<UInt8>) -> Void) -> Int {
        guard !self.ended else { return 0 }
        var total = 0
        while true {
            let n = self.buffer.withUnsafeMutableBytes { read(self.fd, $0.baseAddress, $0.count) }
            if n > 0 {
                total += n
                self.splitter.feed(self.buffer[0..<n], line: line)
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { return total }
            self.ended = true
            self.splitter.flush(line: line)
            return total
        }
    }
}
