import AdminServer
import Foundation
import GuardCore
import Hummingbird
import Testing
import Yams

/// docs/openapi.yaml and the server's routes name the same operations.
@Suite struct OpenAPITests {
    static var documentURL: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/openapi.yaml")
    }

    /// `/api/bans/{scope}/{key}`, `/api/bans/:scope/**` → `/api/bans/{}/{}`.
    static func shape(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { part in
            part.hasPrefix("{") || part.hasPrefix(":") || part == "**" ? "{}" : String(part)
        }.joined(separator: "/")
    }

    @Test func documentAndRoutesAgree() async throws {
        let text = try String(contentsOf: Self.documentURL, encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        var documented: Set<String> = []
        var open: Set<String> = []
        for (path, value) in paths {
            let operations = try #require(value as? [String: Any])
            for (method, operation) in operations where ["get", "post", "put", "delete", "patch"].contains(method) {
                documented.insert("\(method.uppercased()) \(Self.shape(path))")
                if let security = (operation as? [String: Any])?["security"] as? [Any], security.isEmpty { open.insert(path) }
            }
        }
        let fixture = try await AdminFixture()
        let routes = Set(fixture.api.router().routes.map { "\($0.method.rawValue) \(Self.shape($0.path.description))" })
        #expect(documented == routes, "only documented: \(documented.subtracting(routes)); only served: \(routes.subtracting(documented))")
        #expect(open == AdminAPI.openPaths, "the operations documented without security are the ones served without a token")
        #expect((document["info"] as? [String: Any])?["version"] as? String == SMTPGuardVersion.current)
    }
}
