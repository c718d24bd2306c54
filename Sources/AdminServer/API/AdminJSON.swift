// The admin API's JSON, both ways: the one encoder every answer goes through (Hummingbird's
// `ResponseEncoder` for the routes, and the errors), and the coders `AdminClient` reads the
// answers and writes the requests with. Trusts nothing; talks to nobody.
//
// Keys are sorted, so an answer is the same bytes for the same value (Foundation's encoder
// keeps no order of its own on Linux); slashes stay as they are (`10.0.0.0/8`, not `\/`); one
// newline ends the body, as a line for `curl` and for `--json`.

import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

public enum AdminJSON {
    /// A new encoder configured as every answer is written.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// The value as the API writes it, with the closing newline.
    public static func encode(_ value: some Encodable) throws -> Data {
        var data = try self.encoder().encode(value)
        data.append(0x0A)
        return data
    }

    /// An answer's body as `T`.
    public static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    /// A JSON answer: the body, its type, and never cached (it holds the guard's state).
    static func response(_ status: HTTPResponse.Status, _ value: some Encodable) throws -> Response {
        let data = try self.encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The routes' `ResponseEncodable` answers go through this (`AdminRequestContext.responseEncoder`).
public struct AdminResponseEncoder: ResponseEncoder {
    public init() {}

    public func encode(_ value: some Encodable, from request: Request, context: some RequestContext) throws -> Response {
        try AdminJSON.response(.ok, value)
    }
}
