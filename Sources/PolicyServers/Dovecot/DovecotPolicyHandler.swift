// The HTTP side of the Dovecot policy endpoint: one handler per connection, kept alive as
// Dovecot keeps it. It checks the credentials before it reads anything into a decision,
// caps the body, and answers every request it cannot use with a 4xx that says why, logged
// (never with the secret, the body or pwhash).
//
// Routes: POST <any path>?command=allow|report (Dovecot's), and /health, which does no work
// (for monitoring, and the benchmark's baseline).

import GuardCore
import Logging
import Metrics
import NIOCore
import NIOHTTP1

/// The credentials a request must carry, prepared once.
public struct PolicyCredentials: Sendable {
    /// Lower-cased header name and the value it must have.
    let apiKey: (name: String, value: [UInt8])?
    /// The `Authorization` value for basic auth: "Basic " + base64(user:password).
    let basic: [UInt8]?

    public init(_ configuration: DovecotPolicyConfiguration) {
        self.apiKey = configuration.apiKey.map { ($0.name, Array($0.value.utf8)) }
        self.basic = configuration.basicAuth.isEmpty ? nil : Array(("Basic " + Base64.encode(Array(configuration.basicAuth.utf8))).utf8)
    }

    /// True when the request carries every configured credential.
    func admits(_ headers: HTTPHeaders) -> Bool {
        if self.apiKey == nil && self.basic == nil { return false }
        if let apiKey = self.apiKey {
            guard let value = headers.first(name: apiKey.name), constantTimeEqual(Array(value.utf8), apiKey.value) else { return false }
        }
        if let basic = self.basic {
            guard let value = headers.first(name: "authorization"), constantTimeEqual(Array(value.utf8), basic) else { return false }
        }
        return true
    }
}

final class DovecotPolicyHandler: ChannelInboundHandler, @unchecked Sendable {  // used on its channel's event loop only
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let policy: DovecotPolicy
    private let credentials: PolicyCredentials
    private let maxBodySize: Int
    private let logger: Logger
    /// smtpguard_policy_request_duration_seconds{server="dovecot"}: from a complete request to its answer.
    private let latency: Metrics.Timer?
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var tooLarge = false
    private var peer = "-"

    init(policy: DovecotPolicy, credentials: PolicyCredentials, maxBodySize: Int, logger: Logger, latency: Metrics.Timer? = nil) {
        self.latency = latency
        self.policy = policy
        self.credentials = credentials
        self.maxBodySize = maxBodySize
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        self.peer = context.remoteAddress?.ipAddress ?? "-"
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body = nil
            self.tooLarge = false
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > self.maxBodySize { self.tooLarge = true }
        case .body(var part):
            guard !self.tooLarge else { return }
            if (self.body?.readableBytes ?? 0) + part.readableBytes > self.maxBodySize {
                self.tooLarge = true
                self.body = nil
            } else if self.body == nil {
                self.body = part
            } else {
                self.body!.writeBuffer(&part)
            }
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            self.respond(context: context, head: head)
        }
    }

    private func refuse(context: ChannelHandlerContext, head: HTTPRequestHead, _ status: HTTPResponseStatus, _ reason: String, close: Bool = false) {
        self.logger.warning("dovecot policy: \(status.code) to \(self.peer): \(reason)")
        var json = JSONObjectWriter()
        json.string("error", reason)
        var extra: [(String, String)] = []
        if status == .unauthorized && self.credentials.basic != nil { extra.append(("WWW-Authenticate", "Basic realm=\"smtpguard\"")) }
        HTTPResponder.respond(context: context, request: head, status: status, body: json.finish(), extraHeaders: extra, close: close)
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let began = ContinuousClock.now
        guard self.credentials.admits(head.headers) else {
            self.refuse(context: context, head: head, .unauthorized, "missing or wrong credentials (API key header or basic auth)")
            return
        }
        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = parts.first.map(String.init) ?? "/"
        if path == "/health" {
            HTTPResponder.respond(context: context, request: head, status: .ok, body: #"{"status":0,"msg":"ok"}"#)
            return
        }
        guard !self.tooLarge else {
            self.refuse(context: context, head: head, .payloadTooLarge, "body over \(self.maxBodySize) bytes", close: true)
            return
        }
        guard head.method == .POST else {
            self.refuse(context: context, head: head, .methodNotAllowed, "\(head.method.rawValue) \(path.logSafe): Dovecot's requests are POST")
            return
        }
        let command = parts.count > 1 ? Self.queryValue("command", in: parts[1]) : nil
        guard let command, command == "allow" || command == "report" else {
            self.refuse(context: context, head: head, .badRequest, "command must be allow or report (got \(command.map { "\"\($0.logSafe)\"" } ?? "none"))")
            return
        }
        let bytes = self.body.map { Array($0.readableBytesView) } ?? []
        self.body = nil
        let request: DovecotPolicyRequest
        do {
            request = try DovecotPolicyRequest.parse(bytes, report: command == "report")
        } catch {
            self.refuse(context: context, head: head, .badRequest, "\(command): \(error.message)")
            return
        }
        let answer = command == "allow" ? self.policy.allow(request) : self.policy.report(request)
        if self.logger.logLevel <= .debug {
            self.logger.debug(
                "dovecot policy: \(command) \(request.login.logSafe) from \(request.remote)\(request.success.map { $0 ? " (success)" : " (failure)" } ?? ""): status \(answer.status)")
        }
        HTTPResponder.respond(context: context, request: head, status: .ok, body: answer.json)
        self.latency?.record(duration: ContinuousClock.now - began)
    }

    static func queryValue(_ name: String, in query: Substring) -> String? {
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if kv.first == Substring(name) { return kv.count > 1 ? String(kv[1]) : "" }
        }
        return nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HTTPParserError {
            self.logger.warning("dovecot policy: malformed HTTP from \(self.peer) (\(error)): connection closed")
        }
        context.close(promise: nil)
    }
}
