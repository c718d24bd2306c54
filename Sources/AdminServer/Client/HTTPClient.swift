// A small HTTP/1.1 client on SwiftNIO, for what the guard sends (alert webhooks) and what the
// command line asks a running guard (the admin API): one request per connection, http or
// https, a deadline on the whole exchange, and the body either collected (bounded) or handed
// over piece by piece as it arrives (server-sent events).

import GuardCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

public struct HTTPClientError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public struct HTTPClientResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public var text: String { String(buffer: self.body) }
}

public enum HTTPClient {
    /// Sends a request and collects the answer (at most `maxBody` bytes of body).
    public static func send(
        _ method: HTTPMethod, _ url: HTTPURL, headers: [(String, String)] = [], body: ByteBuffer? = nil, timeout: Duration,
        maxBody: Int = 16 << 20
    ) async throws -> HTTPClientResponse {
        var head: HTTPResponseHead?
        var collected = ByteBuffer()
        try await self.exchange(method, url, headers: headers, body: body, timeout: timeout) { part in
            switch part {
            case .head(let received): head = received
            case .body(var chunk):
                guard collected.readableBytes + chunk.readableBytes <= maxBody else { throw HTTPClientError("\(url): answer larger than \(maxBody) bytes") }
                collected.writeBuffer(&chunk)
            case .end: break
            }
        }
        guard let head else { throw HTTPClientError("\(url): the connection closed before an answer") }
        return HTTPClientResponse(status: Int(head.status.code), headers: head.headers, body: collected)
    }

    /// Sends a request and hands each part of the answer to `receive` as it arrives, until the
    /// answer ends, `receive` throws, or `timeout` passes (nil: no deadline).
    public static func exchange(
        _ method: HTTPMethod, _ url: HTTPURL, headers: [(String, String)] = [], body: ByteBuffer? = nil, timeout: Duration?,
        receive: (HTTPClientResponsePart) async throws -> Void
    ) async throws {
        let connectTimeout = min(timeout ?? .seconds(10), .seconds(10))
        let sslContext: NIOSSLContext? = url.tls ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.nanoseconds(connectTimeout.nanosecondsClamped))
                .connect(host: url.host, port: url.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            let serverName = url.host.contains(":") || url.host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : url.host
                            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw HTTPClientError("\(url.hostHeader): cannot connect (\(Self.explain(error)))")
        }
        var requestHead = HTTPRequestHead(version: .http1_1, method: method, uri: url.path)
        requestHead.headers.add(name: "Host", value: url.hostHeader)
        requestHead.headers.add(name: "User-Agent", value: "smtpguard/\(SMTPGuardVersion.current)")
        requestHead.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { requestHead.headers.add(name: name, value: value) }
        if let body { requestHead.headers.add(name: "Content-Length", value: String(body.readableBytes)) }
        // The deadline closes the connection, which ends the reading below.
        let timedOut = NIOLockedValueBox(false)
        let deadline = timeout.map { timeout in
            channel.channel.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanosecondsClamped)) {
                timedOut.withLockedValue { $0 = true }
                channel.channel.close(promise: nil)
            }
        }
        defer { deadline?.cancel() }
        do {
            try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(.head(requestHead))
                if let body { try await outbound.write(.body(.byteBuffer(body))) }
                try await outbound.write(.end(nil))
                for try await part in inbound {
                    try await receive(part)
                    if case .end = part { return }
                }
                throw HTTPClientError("\(url.hostHeader): the connection closed before the answer ended")
            }
        } catch {
            if timedOut.withLockedValue({ $0 }) { throw HTTPClientError("\(url.hostHeader): no complete answer within \(timeout?.description ?? "")") }
            if error is HTTPClientError { throw error }
            throw HTTPClientError("\(url.hostHeader): \(Self.explain(error))")
        }
    }

    static func explain(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("connection refused") || text.contains("Connection refused") { return "connection refused" }
        if text.contains("connectTimeout") || text.contains("timed out") { return "timed out" }
        return text
    }
}
