// The command line's side of the admin API: a running guard's address and token, requests,
// and errors in words for the administrator (not running, wrong token, what the guard said).

import GuardCore
import NIOCore
import NIOHTTP1

public struct AdminClient: Sendable {
    public let base: HTTPURL
    let token: String
    /// Long enough for a guard whose database stalled to answer 503 after state.timeout.
    public var timeout: Duration = .seconds(30)

    public init(base: HTTPURL, token: String) {
        self.base = base
        self.token = token
    }

    /// The address of `admin.listen` as a URL (a wildcard listen address is asked on loopback).
    public static func baseURL(listen: String) -> HTTPURL? {
        if listen.hasPrefix("http://") || listen.hasPrefix("https://") { return HTTPURL(listen) }
        guard var hostPort = HostPort(listen) else { return nil }
        if hostPort.host == "0.0.0.0" { hostPort.host = "127.0.0.1" }
        if hostPort.host == "::" { hostPort.host = "::1" }
        return HTTPURL("http://\(hostPort)")
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
        public var status: Int?
    }

    func url(_ path: String) -> HTTPURL {
        var url = self.base
        url.path = (self.base.path == "/" ? "" : self.base.path) + path
        return url
    }

    var headers: [(String, String)] { [("Authorization", "Bearer \(self.token)"), ("Accept", "application/json")] }

    /// A request whose answer must be 2xx; the body of the answer.
    public func request(_ method: HTTPMethod, _ path: String, json: String? = nil) async throws -> String {
        var headers = self.headers
        if json != nil { headers.append(("Content-Type", "application/json")) }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.send(method, self.url(path), headers: headers, body: json.map { ByteBuffer(string: $0) }, timeout: self.timeout)
        } catch {
            throw Failure(description: "no answer from the guard's admin API at \(self.base) (\(error)); is the guard running with admin.listen set to that address?")
        }
        try self.check(response.status, body: response.text)
        return response.text
    }

    func check(_ status: Int, body: String) throws {
        guard !(200..<300).contains(status) else { return }
        if status == 401 {
            throw Failure(
                description: "the guard at \(self.base) refused the token (401): use the token of that guard (admin.token, or its token file; see --token-file)",
                status: status)
        }
        throw Failure(description: "the guard answered \(status): \(Self.errorText(body))", status: status)
    }

    /// The "error" of a JSON error body, or the body.
    static func errorText(_ body: String) -> String {
        if let range = body.range(of: "\"error\":\""), let end = body[range.upperBound...].firstIndex(of: "\"") {
            return String(body[range.upperBound..<end])
        }
        return body.trimmingWhitespace
    }

    /// Follows server-sent events: `receive` gets each event's data line until the guard ends
    /// the stream or the connection breaks.
    public func follow(_ path: String, receive: (String) async throws -> Void) async throws {
        var status = 0
        var pending = ""
        var errorBody = ""
        do {
            try await HTTPClient.exchange(
                .GET, self.url(path), headers: self.headers + [("Accept", "text/event-stream")], timeout: nil
            ) { part in
                switch part {
                case .head(let head): status = Int(head.status.code)
                case .body(let buffer):
                    let text = String(buffer: buffer)
                    guard (200..<300).contains(status) else {
                        errorBody += text
                        return
                    }
                    pending += text
                    while let cut = pending.range(of: "\n\n") {
                        let block = pending[..<cut.lowerBound]
                        pending = String(pending[cut.upperBound...])
                        for line in block.split(separator: "\n") where line.hasPrefix("data: ") {
                            try await receive(String(line.dropFirst(6)))
                        }
                    }
                case .end: break
                }
            }
        } catch let error as Failure {
            throw error
        } catch {
            if status == 0 {
                throw Failure(description: "no answer from the guard's admin API at \(self.base) (\(error)); is the guard running with admin.listen set to that address?")
            }
            throw Failure(description: "the event stream from \(self.base) broke (\(error))")
        }
        try self.check(status, body: errorBody)
    }
}
