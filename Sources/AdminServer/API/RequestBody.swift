// What the routes read from a request besides the query: a JSON body (too large, not JSON,
// or not of the expected shape is a 400 that says what and where, never echoing the body)
// and the rest of a `**` path.

import Foundation
import GuardCore
import Hummingbird
import NIOCore

struct RequestBodyReader: Sendable {
    let maxBodySize: Int

    /// The JSON body as `T`.
    func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: self.maxBodySize)
        } catch {
            throw APIError.badRequest("body: larger than \(self.maxBodySize) bytes (admin.max_body_size)")
        }
        guard buffer.readableBytes > 0 else { throw APIError.badRequest("body: empty; expected a JSON object") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw APIError.badRequest("body: \(Self.explain(error))")
        }
    }

    static func explain(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.isEmpty ? "" : codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") + ": "
        }
        switch error {
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "not valid JSON" }
            return "\(path(context.codingPath))\(context.debugDescription)"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath))missing field \"\(key.stringValue)\""
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath))expected \(Self.name(of: type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath))expected \(Self.name(of: type)), got null"
        @unknown default:
            return "not of the expected shape"
        }
    }

    static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        default: return "an object"
        }
    }
}

extension AdminRequestContext {
    /// The rest of the path after a `**` route, percent-decoded (`10.0.0.0/24` or `10.0.0.0%2F24`).
    var catchAll: String {
        let raw = self.parameters.getCatchAll().joined(separator: "/")
        return raw.removingPercentEncoding ?? raw
    }
}
