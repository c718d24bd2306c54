// Exchange 2007+ SMTP receive protocol logs (CSV, one file per hour or day in a directory):
//   #Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context
//   2026-11-23T02:03:14.123Z,EX1\Client Frontend EX1,08DC1,7,10.0.0.5:587,203.0.113.9:51234,*,,Inbound AUTH LOGIN failed because of LogonDenied
//   2026-11-23T02:03:14.125Z,EX1\Client Frontend EX1,08DC1,8,10.0.0.5:587,203.0.113.9:51234,>,535 5.7.3 Authentication unsuccessful,
//   2026-11-23T02:03:20.001Z,EX1\Client Frontend EX1,08DC2,9,10.0.0.5:587,198.51.100.7:40000,*,EXAMPLE\alice,authenticated
// A failure is the "535 5.7.3" reply; its client is the session's remote endpoint field and its
// username the one Exchange named for the session (an "authenticated" or "failed" event),
// when it did. Fields are taken by position from the "#Fields:" header, CSV quoting honoured,
// so no text in a data field can move the address. The client's own AUTH lines (base64) are
// never read.

import GuardCore

public struct ExchangeFormat: LogFormat {
    public let name = "exchange"
    public let rules = ["auth_unsuccessful", "authenticated"]

    /// Column positions, from the latest "#Fields:" header (Exchange's default order until then).
    var sessionColumn = 2
    var remoteColumn = 5
    var eventColumn = 6
    var dataColumn = 7
    var contextColumn = 8
    /// Usernames Exchange named per session, until the session ends. Bounded.
    var usernames: [String: String] = [:]
    static let maxSessions = 10_000

    public init() {}

    static let fieldsHeader = Array("#Fields: ".utf8)
    static let unsuccessful = Array("535 5.7.3".utf8)
    static let authenticated = Array("authenticated".utf8)

    public mutating func match(line: ArraySlice<UInt8>, message: ArraySlice<UInt8>, program: ArraySlice<UInt8>) -> LogMatch? {
        guard let first = line.first else { return nil }
        if first == UInt8(ascii: "#") {
            if line.hasPrefix(Self.fieldsHeader, at: line.startIndex) {
                let names = line[(line.startIndex + Self.fieldsHeader.count)...].split(separator: UInt8(ascii: ",")).map { $0.text.trimmingWhitespace() }
                func column(_ name: String, _ fallback: Int) -> Int { names.firstIndex(of: name) ?? fallback }
                self.sessionColumn = column("session-id", 2)
                self.remoteColumn = column("remote-endpoint", 5)
                self.eventColumn = column("event", 6)
                self.dataColumn = column("data", 7)
                self.contextColumn = column("context", 8)
            }
            return nil
        }
        let fields = Self.csvFields(line)
        guard fields.count > max(self.remoteColumn, self.eventColumn, self.dataColumn) else { return nil }
        let session = fields[self.sessionColumn].text
        let event = fields[self.eventColumn]
        let data = fields[self.dataColumn]
        let context = self.contextColumn < fields.count ? fields[self.contextColumn] : [][...]
        switch event.first {
        case UInt8(ascii: "*"):
            // "*,USER,authenticated" or "*,USER,Inbound AUTH … failed …"
            if !data.isEmpty, context.containsCaseless(Self.authenticated) || context.containsCaseless(Needles.fail) {
                self.remember(session, username: data.text)
            }
            if context.text == "authenticated", !data.isEmpty, let address = Self.address(fields[self.remoteColumn]) {
                return .attempt(rule: "authenticated", client: address, username: data.text, outcome: .success, count: 1)
            }
            return nil
        case UInt8(ascii: ">"):
            guard data.hasPrefix(Self.unsuccessful, at: data.startIndex) else { return nil }
            guard let address = Self.address(fields[self.remoteColumn]) else { return .suspect }
            return .attempt(rule: "auth_unsuccessful", client: address, username: self.usernames[session] ?? "", outcome: .failure, count: 1)
        case UInt8(ascii: "-"):
            self.usernames[session] = nil  // the session ended
            return nil
        default:
            return nil
        }
    }

    private mutating func remember(_ session: String, username: String) {
        if self.usernames.count >= Self.maxSessions { self.usernames.removeAll(keepingCapacity: true) }
        self.usernames[session] = username
    }

    /// "203.0.113.9:51234", "[2001:db8::1]:51234" or "2001:db8::1:51234" (port last).
    static func address(_ endpoint: ArraySlice<UInt8>) -> IPAddress? {
        var text = endpoint.text
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            return IPAddress(text[text.index(after: text.startIndex)..<close])
        }
        if let colon = text.lastIndex(of: ":") { text = String(text[..<colon]) }
        return IPAddress(text)
    }

    /// The fields of a CSV line: commas separate, a field in double quotes may hold commas,
    /// and "" inside quotes is one quote.
    static func csvFields(_ line: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var fields: [ArraySlice<UInt8>] = []
        var i = line.startIndex
        while i <= line.endIndex {
            if i < line.endIndex && line[i] == UInt8(ascii: "\"") {
                var value: [UInt8] = []
                var j = i + 1
                while j < line.endIndex {
                    if line[j] == UInt8(ascii: "\"") {
                        if j + 1 < line.endIndex && line[j + 1] == UInt8(ascii: "\"") {
                            value.append(UInt8(ascii: "\""))
                            j += 2
                            continue
                        }
                        break
                    }
                    value.append(line[j])
                    j += 1
                }
                fields.append(value[...])
                // skip to the comma after the closing quote
                while j < line.endIndex && line[j] != UInt8(ascii: ",") { j += 1 }
                i = j + 1
            } else {
                var j = i
                while j < line.endIndex && line[j] != UInt8(ascii: ",") { j += 1 }
                fields.append(line[i..<j])
                i = j + 1
            }
            if fields.count > 64 { break }
        }
        return fields
    }
}
