// A Windows event reduced to what SMTPGuard reads: the System fields that say what and when,
// and the named EventData (or UserData) values. Built from an `EventNode` tree (.evtx, Event
// XML) or directly from forwarded JSON (Winlogbeat, NXLog).

import GuardCore

public struct WindowsEvent: Sendable, Equatable {
    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public var eventID: Int
    public var recordID: UInt64?
    /// System/TimeCreated SystemTime.
    public var time: Timestamp?
    public var provider: String
    public var channel: String
    public var computer: String
    /// EventData's `<Data Name="…">` values in order; for UserData, its innermost elements by name;
    /// for the 2003-era events without names, "1", "2", … by position.
    public var fields: [Field]

    public init(eventID: Int, recordID: UInt64? = nil, time: Timestamp? = nil, provider: String = "", channel: String = "", computer: String = "", fields: [Field] = []) {
        self.eventID = eventID
        self.recordID = recordID
        self.time = time
        self.provider = provider
        self.channel = channel
        self.computer = computer
        self.fields = fields
    }

    /// The value of a named field (case-sensitive, as Windows names them).
    public subscript(_ name: String) -> String? {
        self.fields.first(where: { $0.name == name })?.value
    }
}

extension WindowsEvent {
    /// From an `<Event>` tree; nil when it has no System/EventID.
    public init?(node: EventNode) {
        guard node.name == "Event", let system = node.child("System"),
            let idText = system.child("EventID")?.text.trimmingWhitespace(), let id = Int(idText)
        else { return nil }
        self.init(eventID: id)
        self.recordID = system.child("EventRecordID").flatMap { UInt64($0.text.trimmingWhitespace()) }
        self.time = system.child("TimeCreated")?.attribute("SystemTime").flatMap(WindowsTime.parse)
        self.provider = system.child("Provider")?.attribute("Name") ?? ""
        self.channel = system.child("Channel")?.text ?? ""
        self.computer = system.child("Computer")?.text ?? ""
        if let data = node.child("EventData") {
            var position = 0
            for element in data.elements {
                position += 1
                let name = element.attribute("Name") ?? (element.name == "Data" ? String(position) : element.name)
                self.fields.append(Field(name: name, value: element.text))
            }
        } else if let user = node.child("UserData") {
            // <UserData><SomeEvent xmlns="…"><Field>value</Field>…</SomeEvent></UserData>
            for wrapper in user.elements {
                for element in wrapper.elements { self.fields.append(Field(name: element.name, value: element.text)) }
            }
        }
    }
}

/// Times as Windows and the tools that export its events write them.
public enum WindowsTime {
    /// 100-nanosecond intervals since 1601-01-01 (FILETIME) to a timestamp.
    public static func fromFiletime(_ filetime: UInt64) -> Timestamp {
        // 11,644,473,600 seconds between 1601-01-01 and 1970-01-01.
        let unix100ns = Int64(bitPattern: filetime &- 116_444_736_000_000_000)
        return Timestamp(nanoseconds: unix100ns.multipliedReportingOverflow(by: 100).overflow ? 0 : unix100ns * 100)
    }

    /// "2020-09-09T13:18:23.6279510Z" (Event XML), "2020-09-09 13:18:23.627951+00:00"
    /// (python-evtx), "2020-09-09T13:18:23.627Z" (Winlogbeat) and "2020-09-09 15:18:23"
    /// (NXLog's local EventTime, read as UTC).
    public static func parse(_ text: String) -> Timestamp? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 19 else { return nil }
        func number(_ from: Int, _ count: Int) -> Int? {
            var value = 0
            for i in from..<(from + count) {
                let b = bytes[i]
                guard b >= 48 && b <= 57 else { return nil }
                value = value * 10 + Int(b - 48)
            }
            return value
        }
        guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: " "),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
            let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
            let seconds = Timestamp.epochSeconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        else { return nil }
        var index = 19
        var fraction: Int64 = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var digits = 0
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                if digits < 9 {
                    fraction = fraction * 10 + Int64(bytes[index] - 48)
                    digits += 1
                }
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<9 { fraction *= 10 }
        }
        var offset: Int64 = 0
        if index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "Z"): index += 1
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                guard bytes.count >= index + 6, bytes[index + 3] == UInt8(ascii: ":"), let h = number(index + 1, 2), let m = number(index + 4, 2) else { return nil }
                offset = Int64(h * 3600 + m * 60) * (bytes[index] == UInt8(ascii: "+") ? 1 : -1)
                index += 6
            default: return nil
            }
        }
        guard index == bytes.count else { return nil }
        return Timestamp(nanoseconds: (seconds - offset) * 1_000_000_000 + fraction)
    }
}
