// How every audit command ends (check-password, audit-passwords, audit, dnsbl): the
// report's status as the exit status, and an audit that could not run printed as
// "Error: …" with status 3. Exit status: 0 pass, 1 warnings, 2 failures, 3 could not run.

import ArgumentParser
import Audit
import Foundation

/// An audit that could not run: printed, exit status 3.
struct AuditFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum AuditExit {
    static let pass = AuditExitStatus.pass, warnings = AuditExitStatus.warnings, failures = AuditExitStatus.failures, error = AuditExitStatus.error

    /// Runs `body`; an AuditFailure (or the probe's ProbeError) is printed and becomes exit
    /// status 3.
    static func run(_ body: () throws -> Int32) throws {
        try self.exit(with: Result { try body() })
    }

    static func run(_ body: () async throws -> Int32) async throws {
        let result: Result<Int32, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        try self.exit(with: result)
    }

    private static func exit(with result: Result<Int32, any Error>) throws {
        let status: Int32
        switch result {
        case .success(let value):
            status = value
        case .failure(let failure as AuditFailure):
            FileHandle.standardError.write(Data("Error: \(failure.description)\n".utf8))
            status = Self.error
        case .failure(let failure as ProbeError):
            FileHandle.standardError.write(Data("Error: \(failure.description)\n".utf8))
            status = Self.error
        case .failure(let other):
            throw other
        }
        if status != 0 { throw ExitCode(status) }
    }
}
