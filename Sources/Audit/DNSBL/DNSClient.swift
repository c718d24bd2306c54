// Asks one resolver over UDP: one socket per question, an answer matched by id and sender,
// one retry, a deadline for each try.

import Foundation
import GuardCore
import NIOCore
import NIOPosix
import Synchronization

public struct DNSResolver: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int = 53) {
        self.host = host
        self.port = port
    }

    public var description: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)" }

    /// `ADDRESS`, `[IPv6]`, `ADDRESS:PORT` or `[IPv6]:PORT`.
    public init?(parsing text: String) {
        let bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        if IPAddress(bare) != nil {
            self.init(host: bare)
        } else if let hostPort = HostPort(text), IPAddress(hostPort.host) != nil, hostPort.port > 0 {
            self.init(host: hostPort.host, port: hostPort.port)
        } else {
            return nil
        }
    }

    /// The first `nameserver` of a resolv.conf.
    public static func system(path: String = "/etc/resolv.conf") throws -> DNSResolver {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ProbeError("\(path): cannot read it (\(error.localizedDescription)); name a resolver with --resolver")
        }
        for line in text.split(whereSeparator: \.isNewline) {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if words.count >= 2, words[0] == "nameserver" {
                let address = words[1].split(separator: "%").first.map(String.init) ?? ""
                if IPAddress(address) != nil { return DNSResolver(host: address) }
            }
        }
        throw ProbeError("\(path) names no nameserver; name a resolver with --resolver")
    }
}

public struct DNSClient: Sendable {
    public var resolver: DNSResolver
    public var timeout: Duration

    public init(resolver: DNSResolver, timeout: Duration = .seconds(3)) {
        self.resolver = resolver
        self.timeout = timeout
    }

    /// The answer to one question; throws a ProbeError when none comes (after one retry).
    public func ask(_ name: String, type: DNSRecordType) async throws -> DNSResponse {
        var lastError: any Error = ProbeError("no answer")
        for _ in 0..<2 {
            do {
                return try await self.once(DNSQuery(id: UInt16.random(in: 0...UInt16.max), name: name, type: type))
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private func once(_ query: DNSQuery) async throws -> DNSResponse {
        let remote: SocketAddress
        do {
            remote = try SocketAddress(ipAddress: self.resolver.host, port: self.resolver.port)
        } catch {
            throw ProbeError("resolver \(self.resolver): not an address")
        }
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: remote.protocol == .inet6 ? "::" : "0.0.0.0", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel)
                }
            }
        let timedOut = Deadline()
        let timeout = self.timeout
        let deadline = channel.channel.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanosecondsClamped)) {
            timedOut.passed = true
            channel.channel.close(promise: nil)
        }
        defer { deadline.cancel() }
        let answer: DNSResponse? = try? await channel.executeThenClose { inbound, outbound in
            try await outbound.write(AddressedEnvelope(remoteAddress: remote, data: ByteBuffer(bytes: query.encoded)))
            for try await envelope in inbound where envelope.remoteAddress == remote {
                guard let response = try? DNSResponse(parsing: Array(envelope.data.readableBytesView)), response.id == query.id else { continue }
                return response
            }
            return nil
        }
        guard let answer else {
            throw ProbeError(timedOut.passed ? "no answer from \(self.resolver) within \(timeout)" : "the resolver \(self.resolver) cannot be reached")
        }
        return answer
    }
}

/// Whether the deadline closed the channel.
final class Deadline: Sendable {
    private let flag = Atomic<Bool>(false)
    var passed: Bool {
        get { self.flag.load(ordering: .relaxed) }
        set { self.flag.store(newValue, ordering: .relaxed) }
    }
}
