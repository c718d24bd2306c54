// A request's query parameters, checked: an unknown name or a value of the wrong form is a
// 400 that names it (a misspelt filter must not silently list everything).

import GuardCore
import Hummingbird

struct Query {
    private var values: [String: String] = [:]

    init(_ request: Request, allowed: Set<String>) throws {
        for (name, value) in request.uri.queryParameters {
            let key = String(name)
            guard allowed.contains(key) else {
                let known = allowed.isEmpty ? "this route takes none" : "known: \(allowed.sorted().joined(separator: ", "))"
                throw APIError.badRequest("unknown query parameter \"\(key.logSafe)\" (\(known))")
            }
            self.values[key] = String(value).removingPercentEncoding ?? String(value)
        }
    }

    subscript(_ name: String) -> String? {
        guard let value = self.values[name], !value.isEmpty else { return nil }
        return value
    }

    func int(_ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        try self.optionalInt(name, range: range) ?? value
    }

    func optionalInt(_ name: String, range: ClosedRange<Int>) throws -> Int? {
        guard let text = self[name] else { return nil }
        guard let number = Int(text), range.contains(number) else {
            throw APIError.badRequest("\(name): expected a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(text.logSafe)\"")
        }
        return number
    }

    func bool(_ name: String) throws -> Bool {
        guard let text = self[name] else { return false }
        switch text.lowercased() {
        case "1", "true", "yes": return true
        case "0", "false", "no": return false
        default: throw APIError.badRequest("\(name): expected true or false, got \"\(text.logSafe)\"")
        }
    }

    func choice<E: RawRepresentable & CaseIterable>(_ name: String, _ type: E.Type) throws -> E? where E.RawValue == String {
        guard let text = self[name] else { return nil }
        guard let value = E(rawValue: text.lowercased()) else {
            throw APIError.badRequest("\(name): expected one of \(E.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(text.logSafe)\"")
        }
        return value
    }

    /// A comma-separated list of names from `allowed`.
    func set(_ name: String, allowed: Set<String>) throws -> Set<String> {
        guard let text = self[name] else { return [] }
        var names: Set<String> = []
        for part in text.split(separator: ",") {
            let item = part.lowercased()
            guard allowed.contains(item) else {
                throw APIError.badRequest("\(name): expected one or more of \(allowed.sorted().joined(separator: ", ")), got \"\(String(part).logSafe)\"")
            }
            names.insert(item)
        }
        return names
    }

    /// A time: RFC 3339 (`2026-11-23T10:00:00Z`), or a duration back from now (`15m`).
    func time(_ name: String, now: Timestamp) throws -> Timestamp? {
        guard let text = self[name] else { return nil }
        if let time = Timestamp(iso8601: text) { return time }
        if let back = parseDuration(text) { return now - back }
        throw APIError.badRequest("\(name): expected a time such as 2026-11-23T10:00:00Z or a duration back from now such as 15m, got \"\(text.logSafe)\"")
    }
}
