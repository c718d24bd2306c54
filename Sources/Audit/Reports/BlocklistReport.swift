// The report of `smtpguard dnsbl IP…`: each (address, zone) answer as a table row or a JSON
// item, and the exit status. Pure: it formats what Blocklist.check answered.

import GuardCore

public struct BlocklistReport: Sendable {
    public let answers: [BlocklistAnswer]
    public let resolver: DNSResolver

    public init(answers: [BlocklistAnswer], resolver: DNSResolver) {
        self.answers = answers
        self.resolver = resolver
    }

    var listed: Int { self.answers.filter { if case .listed = $0.result { true } else { false } }.count }
    var errors: Int { self.answers.filter { if case .error = $0.result { true } else { false } }.count }

    /// 2 listed somewhere, 1 lookup errors only, 0 listed nowhere.
    public var exitStatus: Int32 {
        if self.listed > 0 { return AuditExitStatus.failures }
        if self.errors > 0 { return AuditExitStatus.warnings }
        return AuditExitStatus.pass
    }

    public func text() -> String {
        let rows = self.answers.map { answer -> [String] in
            switch answer.result {
            case .listed(let codes, let meanings, let reason):
                let why = (meanings + (reason.map { [$0] } ?? [])).joined(separator: "; ")
                return [answer.address.description, answer.zone, "LISTED", codes.joined(separator: ",") + (why.isEmpty ? "" : " — " + why)]
            case .notListed:
                return [answer.address.description, answer.zone, "not listed", ""]
            case .error(let message):
                return [answer.address.description, answer.zone, "ERROR", message]
            }
        }
        let listed = self.listed
        let errors = self.errors
        return TextTable.render(["address", "zone", "result", "codes and reason"], rows)
            + "\n\n\(self.answers.count) lookups through \(self.resolver): \(listed) listed, \(self.answers.count - listed - errors) not listed, \(errors) errors"
    }

    /// One JSON object, keys in a fixed order.
    public func json() -> String {
        let items = self.answers.map { answer in
            var item = JSONObjectWriter()
            item.string("address", answer.address.description)
            item.string("zone", answer.zone)
            switch answer.result {
            case .listed(let codes, let meanings, let reason):
                item.string("result", "listed")
                item.strings("codes", codes)
                if !meanings.isEmpty { item.string("meaning", meanings.joined(separator: "; ")) }
                if let reason { item.string("reason", reason) }
            case .notListed:
                item.string("result", "not_listed")
            case .error(let message):
                item.string("result", "error")
                item.string("error", message)
            }
            return item.finish()
        }
        var out = JSONObjectWriter()
        out.string("resolver", self.resolver.description)
        out.raw("results", "[" + items.joined(separator: ",") + "]")
        return out.finish()
    }
}
