// Every admin request carries `Authorization: Bearer TOKEN`, but the dashboard's page itself
// (it holds no data: it asks the API with the token the operator gives it). A missing or
// wrong token gets 401 and a log line that says which, from where, for what; never the token.

import GuardCore
import Hummingbird
import Logging

struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = AdminRequestContext
    let token: [UInt8]
    let openPaths: Set<String>
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if self.openPaths.contains(request.uri.path) && (request.method == .get || request.method == .head) {
            return try await next(request, context)
        }
        let problem: String
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer", constantTimeEqual(Array(parts[1].utf8), self.token) {
                return try await next(request, context)
            }
            problem = parts.first?.lowercased() == "bearer" ? "wrong bearer token" : "an Authorization header that is not a bearer token"
        } else {
            problem = "no bearer token"
        }
        let client = context.remoteAddress?.ipAddress ?? "?"
        self.logger.warning("admin API: \(problem) from \(client) for \(request.method) \(request.uri.path.logSafe): refused (401)")
        var error = APIError(.unauthorized, "\(problem): send Authorization: Bearer TOKEN (admin.token or the admin token file)")
        error.headers[.wwwAuthenticate] = "Bearer realm=\"smtpguard\""
        throw error
    }
}
