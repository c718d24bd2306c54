// A syslog receiver for `watch`: the Windows shippers (NXLog om_udp / om_tcp, Winlogbeat via
// a relay, rsyslog forwarding) send each event as a message. UDP: one datagram, one message.
// TCP: messages end at a newline, or are octet-counted ("123 <14>…", RFC 6587), as the first
// byte of each connection says. Sockets are non-blocking and polled with the files, so
// shutdown is immediate; at most `maxConnections` TCP senders at once, the oldest idle one
// closed first when more come.

import GuardCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class SyslogListener {
    public enum Transport: String, Sendable { case udp, tcp }

    public let transport: Transport
    public let address: String
    private var fd: Int32 = -1
    private var connections: [Connection] = []
    public let maxConnections: Int
    public let maxMessageLength: Int
    public private(set) var truncated = 0
    private var buffer: [UInt8]

    final class Connection {
        let fd: Int32
        var splitter: LineSplitter
        /// nil until the first byte says how messages are framed.
        var octetCounted: Bool?
        var pending: [UInt8] = []
        var lastRead = ContinuousClock.now
        init(fd: Int32, maxMessageLength: Int) {
            self.fd = fd
            self.splitter = LineSplitter(maxLineLength: maxMessageLength)
        }
    }

    /// Binds at once, so a wrong or taken address fails at start with its reason.
    public init(transport: Transport, host: String, port: Int, maxConnections: Int = 64, maxMessageLength: Int = 256 * 1024) throws {
        self.transport = transport
        self.address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        self.maxConnections = maxConnections
        self.maxMessageLength = maxMessageLength
        self.buffer = [UInt8](repeating: 0, count: max(65536, maxMessageLength))
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(transport == .udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let info = result else {
            throw SyslogListenerError("\(transport.rawValue) \(self.address): not a numeric address (\(String(cString: gai_strerror(status))))")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SyslogListenerError("\(transport.rawValue) \(self.address): socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if info.pointee.ai_family == AF_INET6 { _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size)) }
        if transport == .udp {
            var size: Int32 = 4 << 20  // room for a burst while the watcher polls
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SyslogListenerError("\(transport.rawValue) \(self.address): cannot listen: \(reason)")
        }
        if transport == .tcp, listen(fd, 64) != 0 {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw SyslogListenerError("tcp \(self.address): cannot listen: \(reason)")
        }
        self.fd = fd
    }

    deinit { self.stop() }

    public func stop() {
        for connection in self.connections { close(connection.fd) }
        self.connections = []
        if self.fd >= 0 { close(self.fd) }
        self.fd = -1
    }

    /// The port actually bound (for port 0 in tests).
    public var boundPort: Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(self.fd, $0, &length) } }
        guard ok == 0 else { return 0 }
        let family = storage.ss_family
        return withUnsafePointer(to: &storage) { pointer in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    /// Reads what has arrived; calls `message` for each complete message. Returns bytes read.
    @discardableResult
    public func poll(message: (ArraySlice<UInt8>) -> Void) -> Int {
        guard self.fd >= 0 else { return 0 }
        return self.transport == .udp ? self.pollUDP(message) : self.pollTCP(message)
    }

    private func pollUDP(_ message: (ArraySlice<UInt8>) -> Void) -> Int {
        var total = 0
        for _ in 0..<100_000 {  // bounded: the next poll takes the rest
            let n = self.buffer.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            total += n
            var datagram = self.buffer[0..<n]
            while let last = datagram.last, last == 0x0A || last == 0x0D || last == 0 { datagram = datagram.dropLast() }
            if !datagram.isEmpty { message(datagram) }
        }
        return total
    }

    private func pollTCP(_ message: (ArraySlice<UInt8>) -> Void) -> Int {
        while true {
            let client = accept(self.fd, nil, nil)
            guard client >= 0 else { break }
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            if self.connections.count >= self.maxConnections, let oldest = self.connections.indices.min(by: { self.connections[$0].lastRead < self.connections[$1].lastRead }) {
                close(self.connections[oldest].fd)
                self.connections.remove(at: oldest)
            }
            self.connections.append(Connection(fd: client, maxMessageLength: self.maxMessageLength))
        }
        var total = 0
        var closed: [Int] = []
        for (index, connection) in self.connections.enumerated() {
            var ended = false
            for _ in 0..<1000 {
                let n = self.buffer.withUnsafeMutableBytes { recv(connection.fd, $0.baseAddress, $0.count, 0) }
                if n > 0 {
                    total += n
                    connection.lastRead = .now
                    self.take(self.buffer[0..<n], connection: connection, message)
                    continue
                }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { break }
                ended = true
                break
            }
            if ended {
                if connection.octetCounted == false { connection.splitter.flush { message($0) } }
                close(connection.fd)
                closed.append(index)
            }
        }
        for index in closed.reversed() { self.connections.remove(at: index) }
        return total
    }

    private func take(_ bytes: ArraySlice<UInt8>, connection: Connection, _ message: (ArraySlice<UInt8>) -> Void) {
        if connection.octetCounted == nil, let first = bytes.first {
            connection.octetCounted = first >= UInt8(ascii: "1") && first <= UInt8(ascii: "9")
        }
        guard connection.octetCounted == true else {
            connection.splitter.feed(bytes) { message($0) }
            return
        }
        connection.pending.append(contentsOf: bytes)
        var start = 0
        let pending = connection.pending
        while true {
            var i = start
            var length = 0
            while i < pending.count, pending[i] >= 0x30, pending[i] <= 0x39, i - start < 8 {
                length = length * 10 + Int(pending[i] - 0x30)
                i += 1
            }
            guard i < pending.count else { break }  // the count is not complete yet
            guard pending[i] == 0x20, i > start, length > 0, length <= self.maxMessageLength else {
                // Not octet counting after all: the rest is newline-framed.
                connection.octetCounted = false
                connection.splitter.feed(pending[start...]) { message($0) }
                connection.pending = []
                return
            }
            guard pending.count - (i + 1) >= length else { break }
            var frame = pending[(i + 1)..<(i + 1 + length)]
            while let last = frame.last, last == 0x0A || last == 0x0D { frame = frame.dropLast() }
            message(frame)
            start = i + 1 + length
        }
        connection.pending.removeFirst(start)
    }
}

public struct SyslogListenerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
