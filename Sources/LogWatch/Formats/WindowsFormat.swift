// Windows Security events arriving as lines (`watch`): forwarded JSON (Winlogbeat, NXLog
// to_json()), one Event XML event per line (NXLog to_xml(), or wevtutil's many-events line),
// Event XML spread over lines (Event Viewer's "Save as XML", indented), each optionally behind
// a syslog prefix. Each logon with a client address becomes an attempt under a rule named after
// its event ("4625_failure", "4771_kerberos_failure" …); logons without one (local logons,
// 4776) cannot be blamed on an address and are left to `replay`'s logon summary.

import GuardCore

public struct WindowsFormat: LogFormat {
    public static let formatName = "windows"
    public let name = WindowsFormat.formatName
    public static let ruleNames = [
        "4625_failure", "4624_success", "4771_kerberos_failure", "4776_ntlm_failure", "4776_ntlm_success",
        "528_success", "529_failure", "530_failure", "531_failure", "532_failure", "533_failure", "534_failure",
        "535_failure", "536_failure", "537_failure", "539_failure", "680_ntlm_failure", "680_ntlm_success",
    ]
    public let rules = WindowsFormat.ruleNames

    private var xml = EventXMLReader()
    private var queued: [LogMatch] = []

    public init() {}

    static let eventTag = Array("<Event".utf8)
    static let winlog = Array("\"winlog\"".utf8)
    static let eventID = Array("\"EventID\"".utf8)

    public mutating func match(line: ArraySlice<UInt8>, message: ArraySlice<UInt8>, program: ArraySlice<UInt8>) -> LogMatch? {
        self.queued.removeAll(keepingCapacity: true)
        if line.find(Self.eventTag) != nil || self.xml.isInsideEvent {
            var events: [WindowsEvent] = []
            let malformedBefore = self.xml.malformed.count
            self.xml.feed(line) { node in if let event = WindowsEvent(node: node) { events.append(event) } }
            self.xml.feed(CollectionOfOne(UInt8(ascii: "\n"))) { _ in }
            for event in events { if let match = self.match(event) { self.queued.append(match) } }
            if self.queued.isEmpty && self.xml.malformed.count > malformedBefore { return .suspect }
            return self.queued.isEmpty ? nil : self.queued.removeFirst()
        }
        if let brace = line.firstIndex(of: UInt8(ascii: "{")) {
            let object = line[brace...]
            guard object.find(Self.winlog) != nil || object.find(Self.eventID) != nil else { return nil }
            guard let event = ForwardedJSON.event(in: object) else { return .suspect }
            return self.match(event)
        }
        return nil
    }

    public mutating func nextMatch() -> LogMatch? {
        self.queued.isEmpty ? nil : self.queued.removeFirst()
    }

    func match(_ event: WindowsEvent) -> LogMatch? {
        guard let logon = WindowsLogon(event: event), logon.result != .lockout else { return nil }
        guard let client = logon.client else { return nil }
        return .attempt(rule: logon.rule, client: client, username: logon.username, outcome: logon.outcome, count: 1, time: logon.time)
    }
}
