// Rows in aligned columns, for the reports and the command line's tables. Pure text.

import Foundation

public enum TextTable {
    /// The header and rows, each column as wide as its widest cell, two spaces between; the
    /// last column is not padded.
    public static func render(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}

/// The exit status of every audit command: 0 pass, 1 warnings, 2 failures, 3 could not run.
public enum AuditExitStatus {
    public static let pass: Int32 = 0
    public static let warnings: Int32 = 1
    public static let failures: Int32 = 2
    public static let error: Int32 = 3
}
