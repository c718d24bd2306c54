// The report of `smtpguard audit HOST`, as a table with the fixes for people and as JSON for
// programs. Pure: it formats what ServerAudit found (it never holds a password: a login the
// server accepted is reported by its rule).

import GuardCore

extension ServerAuditReport {
    /// 0 all passed, 1 warnings, 2 failures.
    public var exitStatus: Int32 { self.findings.exitStatus }

    public func text() -> String {
        var lines = ["smtpguard audit \(self.target)"]
        if let greeting = self.greeting { lines.append("greeting: \(greeting)") }
        lines.append("")
        let rows = self.findings.map { finding in [finding.status.rawValue.uppercased(), finding.check, finding.detail] }
        lines.append(TextTable.render(["", "check", "result"], rows))
        let fixes = self.findings.filter { $0.fix != nil }
        if !fixes.isEmpty {
            lines.append("")
            lines.append("To fix:")
            for finding in fixes { lines.append("  \(finding.check): \(finding.fix!)") }
        }
        let count = { (status: AuditFinding.Status) in self.findings.filter { $0.status == status }.count }
        lines.append("")
        lines.append("\(count(.pass)) passed, \(count(.warn)) warnings, \(count(.fail)) failed")
        return lines.joined(separator: "\n")
    }

    /// One JSON object, keys in a fixed order.
    public func json() -> String {
        let findings = self.findings.map { finding in
            var item = JSONObjectWriter()
            item.string("check", finding.check)
            item.string("status", finding.status.rawValue)
            item.string("detail", finding.detail)
            if let fix = finding.fix { item.string("fix", fix) }
            return item.finish()
        }
        var out = JSONObjectWriter()
        out.string("target", self.target)
        if let greeting = self.greeting { out.string("greeting", greeting) }
        if let tls = self.tls {
            var item = JSONObjectWriter()
            item.string("version", tls.version)
            item.bool("trusted", tls.trustProblem == nil)
            if let problem = tls.trustProblem { item.string("trust_problem", problem) }
            item.string("issuer", tls.issuer)
            item.strings("names", tls.names)
            item.int("not_after", tls.notAfter)
            out.raw("tls", item.finish())
        }
        out.raw("findings", "[" + findings.joined(separator: ",") + "]")
        out.string("result", self.findings.worst.rawValue)
        return out.finish()
    }
}
