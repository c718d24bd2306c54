// An answer other than success, as JSON (ErrorBody): {"error": "what was wrong"}, with a
// "code" where a client needs to tell one cause from another.

import GuardCore
import Hummingbird
import Logging
import NIOCore

public struct APIError: HTTPResponseError {
    public var status: HTTPResponse.Status
    public var message: String
    /// A fixed, machine-readable name of the error (`"code"` in the body), when it has one.
    public var code: String?
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ message: String, code: String? = nil) {
        self.status = status
        self.message = message
        self.code = code
    }

    /// The state store failed (a database error, whose text may hold a query, a path or a
    /// URL): the client gets a fixed message, a code and a reference; the detail goes to the
    /// log under the same reference.
    public static func stateUnavailable(_ error: any Error, doing what: String, logger: Logger) -> APIError {
        var generator = SystemRandomNumberGenerator()
        let reference = String(UInt32.random(in: .min ... .max, using: &generator), radix: 16)
        logger.error("admin API: \(what): the state cannot be written: \(error)", metadata: ["error.ref": .string(reference)])
        return APIError(.serviceUnavailable, "the state cannot be written, nothing changed (see the guard's log, ref \(reference))", code: "state_unavailable")
    }

    public static func badRequest(_ message: String) -> APIError { APIError(.badRequest, message) }
    public static func notFound(_ message: String) -> APIError { APIError(.notFound, message) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try AdminJSON.response(self.status, ErrorBody(error: self.message, code: self.code))
        for field in self.headers { response.headers.append(field) }
        return response
    }
}
