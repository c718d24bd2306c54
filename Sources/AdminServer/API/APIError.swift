// An answer other than success, as JSON: {"error": "what was wrong"}.

import GuardCore
import Hummingbird
import NIOCore

public struct APIError: HTTPResponseError {
    public var status: HTTPResponse.Status
    public var message: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public static func badRequest(_ message: String) -> APIError { APIError(.badRequest, message) }
    public static func notFound(_ message: String) -> APIError { APIError(.notFound, message) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var json = JSONObjectWriter()
        json.string("error", self.message)
        var response = JSONResponse.make(self.status, json.finish())
        for field in self.headers { response.headers.append(field) }
        return response
    }
}

enum JSONResponse {
    static func make(_ status: HTTPResponse.Status, _ json: String) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: json + "\n")))
    }

    static func ok(_ json: String) -> Response { self.make(.ok, json) }
}
