// The command line's side of the admin API: a running guard's address and token, requests,
// the answers read as the server's own Codable values (API/Models/), and errors in words for
// the administrator (not running, wrong token, what the guard said). Talks only to the guard
// at `base`; sends the token in the Authorization header and never prints it.

import Foundation
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

    /// An answer: its text as the guard sent it (`--json` prints that), read as `Value`
    /// only when asked, so that printing the text never depends on reading it.
    public struct Answer<Value: Decodable>: Sendable {
        public let text: String

        public func value() throws -> Value {
            do {
                return try AdminJSON.decode(Value.self, from: self.text)
            } catch {
                throw Failure(description: "the guard's answer is not the JSON expected: \(self.text.prefix(200))")
            }
        }
    }

    // MARK: - The API's operations

    public func status() async throws -> Answer<StatusResponse> {
        Answer(text: try await self.request(.GET, "/api/status"))
    }

    public func bans(scope: String? = nil, key: String? = nil, reason: String? = nil, limit: Int) async throws -> Answer<BanList> {
        let query = Self.query([("limit", "\(limit)"), ("scope", scope), ("key", key), ("reason", reason)])
        return Answer(text: try await self.request(.GET, "/api/bans?" + query))
    }

    public func addBan(_ ban: BanRequest) async throws -> Answer<BanRecord> {
        Answer(text: try await self.request(.POST, "/api/bans", json: try Self.json(ban)))
    }

    public func liftBan(scope: String, key: String) async throws -> Answer<BanRecord> {
        Answer(text: try await self.request(.DELETE, "/api/bans/\(Self.path(scope))/\(Self.path(key))"))
    }

    /// Which events: kinds (comma-separated), a client, a username, a time or a duration back.
    public struct EventQuery: Sendable {
        public var kind: String?
        public var client: String?
        public var username: String?
        public var since: String?
        public var limit: Int

        public init(kind: String? = nil, client: String? = nil, username: String? = nil, since: String? = nil, limit: Int) {
            self.kind = kind
            self.client = client
            self.username = username
            self.since = since
            self.limit = limit
        }

        var text: String {
            AdminClient.query([("limit", "\(self.limit)"), ("kind", self.kind), ("client", self.client), ("username", self.username), ("since", self.since)])
        }
    }

    public func events(_ query: EventQuery) async throws -> Answer<EventList> {
        Answer(text: try await self.request(.GET, "/api/events?" + query.text))
    }

    /// The events as they happen: `receive` gets each one (its line of JSON, readable as an
    /// `EventRecord`) until the guard ends the stream or the connection breaks.
    public func followEvents(_ query: EventQuery, receive: (Answer<EventRecord>) async throws -> Void) async throws {
        try await self.follow("/api/events?follow=1&" + query.text) { data in try await receive(Answer(text: data)) }
    }

    public func stats(periods: String, top: Int) async throws -> Answer<StatsResponse> {
        Answer(text: try await self.request(.GET, "/api/stats?" + Self.query([("period", periods), ("top", "\(top)")])))
    }

    public func alerts() async throws -> Answer<AlertList> {
        Answer(text: try await self.request(.GET, "/api/alerts"))
    }

    public func trusted() async throws -> Answer<TrustedNetworkList> {
        Answer(text: try await self.request(.GET, "/api/trusted"))
    }

    public func addTrusted(_ network: TrustedNetworkRequest) async throws -> Answer<TrustedNetworkRecord> {
        Answer(text: try await self.request(.POST, "/api/trusted", json: try Self.json(network)))
    }

    public func removeTrusted(_ network: String) async throws -> Answer<TrustedNetworkRemoval> {
        Answer(text: try await self.request(.DELETE, "/api/trusted/\(Self.path(network))"))
    }

    // MARK: - Requests

    /// `name=value&…` of the values given, percent-encoded, in the order given.
    static func query(_ items: [(String, String?)]) -> String {
        items.compactMap { name, value in value.map { "\(name)=\(Self.path($0))" } }.joined(separator: "&")
    }

    /// One path segment or query value, percent-encoded (a network's `/` too).
    static func path(_ component: String) -> String {
        component.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~@:"))) ?? component
    }

    static func json(_ body: some Encodable) throws -> String {
        String(decoding: try AdminJSON.encoder().encode(body), as: UTF8.self)
    }

    /// A request whose answer must be 2xx; the body of the answer.
    func request(_ method: HTTPMethod, _ path: String, json: String? = nil) async throws -> String {
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
        (try? AdminJSON.decode(ErrorBody.self, from: body))?.error ?? body.trimmingWhitespace
    }

    /// Follows server-sent events: `receive` gets each event's data line until the guard ends
    /// the stream or the connection breaks.
    func follow(_ path: String, receive: (String) async throws -> Void) async throws {
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
