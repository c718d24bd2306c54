// Windows events forwarded as JSON, one object per line, as the two common shippers write them:
//   Winlogbeat (ECS): {"@timestamp":"…","event":{"code":"4625",…},"winlog":{"event_id":4625,
//     "record_id":…,"computer_name":"…","channel":"Security","provider_name":"…",
//     "event_data":{"TargetUserName":"…","IpAddress":"…",…}},"source":{"ip":"…"},…}
//   NXLog to_json(): {"EventTime":"2020-09-09 15:18:23","Hostname":"…","EventID":4625,
//     "Channel":"Security","SourceName":"…","RecordNumber":…,"TargetUserName":"…",…}
// A line may carry a syslog prefix (NXLog over syslog); the object starts at its first "{".

import Foundation
import GuardCore

public enum ForwardedJSON {
    static let brace = Array("{".utf8)

    /// The event in a line, or nil when the line holds no Windows event object.
    public static func event(in line: ArraySlice<UInt8>) -> WindowsEvent? {
        guard let start = line.firstIndex(of: UInt8(ascii: "{")),
            let object = try? JSONSerialization.jsonObject(with: Data(line[start...])) as? [String: Any]
        else { return nil }
        return self.event(from: object)
    }

    public static func event(from object: [String: Any]) -> WindowsEvent? {
        if let winlog = object["winlog"] as? [String: Any] {
            return self.winlogbeat(object, winlog: winlog)
        }
        if object["EventID"] != nil {
            return self.nxlog(object)
        }
        return nil
    }

    static func winlogbeat(_ object: [String: Any], winlog: [String: Any]) -> WindowsEvent? {
        let eventCode = (object["event"] as? [String: Any])?["code"]
        guard let id = self.integer(winlog["event_id"]) ?? self.integer(eventCode) else { return nil }
        var event = WindowsEvent(eventID: id)
        event.recordID = self.integer(winlog["record_id"]).map { UInt64(max(0, $0)) }
        event.time = (object["@timestamp"] as? String).flatMap(WindowsTime.parse)
        event.computer = winlog["computer_name"] as? String ?? ((object["host"] as? [String: Any])?["name"] as? String ?? "")
        event.channel = winlog["channel"] as? String ?? ""
        event.provider = winlog["provider_name"] as? String ?? ""
        for key in ["event_data", "user_data"] {
            if let data = winlog[key] as? [String: Any] {
                for (name, value) in data.sorted(by: { $0.key < $1.key }) { event.fields.append(.init(name: name, value: self.text(value))) }
            }
        }
        // Winlogbeat's processors may have moved the address to ECS fields only.
        if event["IpAddress"] == nil, let ip = (object["source"] as? [String: Any])?["ip"] as? String {
            event.fields.append(.init(name: "IpAddress", value: ip))
            if let port = (object["source"] as? [String: Any])?["port"] { event.fields.append(.init(name: "IpPort", value: self.text(port))) }
        }
        if event["TargetUserName"] == nil, let user = object["user"] as? [String: Any], let name = user["name"] as? String {
            event.fields.append(.init(name: "TargetUserName", value: name))
            if let domain = user["domain"] as? String { event.fields.append(.init(name: "TargetDomainName", value: domain)) }
        }
        return event
    }

    /// NXLog's own fields; everything else is an EventData field.
    static let nxlogFields: Set<String> = [
        "EventTime", "EventReceivedTime", "Hostname", "EventID", "Channel", "SourceName", "ProviderGuid", "RecordNumber",
        "Severity", "SeverityValue", "EventType", "Keywords", "Version", "Task", "OpcodeValue", "ProcessID", "ThreadID",
        "Category", "Opcode", "Message", "SourceModuleName", "SourceModuleType", "ActivityID", "RelatedActivityID", "ERROR_EVT_UNRESOLVED",
    ]

    static func nxlog(_ object: [String: Any]) -> WindowsEvent? {
        guard let id = self.integer(object["EventID"]) else { return nil }
        var event = WindowsEvent(eventID: id)
        event.recordID = self.integer(object["RecordNumber"]).map { UInt64(max(0, $0)) }
        // NXLog writes EventTime in the sender's local time without a zone; read as UTC.
        event.time = (object["EventTime"] as? String).flatMap(WindowsTime.parse)
        event.computer = object["Hostname"] as? String ?? ""
        event.channel = object["Channel"] as? String ?? ""
        event.provider = object["SourceName"] as? String ?? ""
        for (name, value) in object.sorted(by: { $0.key < $1.key }) where !self.nxlogFields.contains(name) {
            event.fields.append(.init(name: name, value: self.text(value)))
        }
        return event
    }

    static func integer(_ value: Any?) -> Int? {
        switch value {
        case let number as NSNumber: return number.intValue
        case let text as String: return Int(text)
        default: return nil
        }
    }

    static func text(_ value: Any) -> String {
        switch value {
        case let text as String: return text
        case let number as NSNumber: return number.stringValue
        case is NSNull: return ""
        default:
            if let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) { return String(decoding: data, as: UTF8.self) }
            return "\(value)"
        }
    }
}
