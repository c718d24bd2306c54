// Windows Security events: Event XML read in pieces, Winlogbeat and NXLog JSON, the logons
// each event ID means, the windows line format, what replay takes a file to be, and the
// syslog receiver.

import Foundation
import GuardCore
import Testing

@testable import LogWatch

/// An Event XML event as wevtutil writes it (single quotes, no white space).
func eventXML(id: Int, record: Int = 1, time: String = "2026-11-23T10:00:00.1234567Z", data: [(String, String)], provider: String = "Microsoft-Windows-Security-Auditing") -> String {
    "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='\(provider)' Guid='{54849625-5478-4994-a5ba-3e3b0328c30d}'/>"
        + "<EventID>\(id)</EventID><Version>0</Version><Level>0</Level><Task>12544</Task><Opcode>0</Opcode><Keywords>0x8010000000000000</Keywords>"
        + "<TimeCreated SystemTime='\(time)'/><EventRecordID>\(record)</EventRecordID><Correlation/><Execution ProcessID='636' ThreadID='1224'/>"
        + "<Channel>Security</Channel><Computer>EXCH01.corp.example</Computer><Security/></System><EventData>"
        + data.map { "<Data Name='\($0.0)'>\($0.1)</Data>" }.joined() + "</EventData></Event>"
}

func failure4625(user: String, ip: String, type: Int = 8, sub: String = "0xc000006a", record: Int = 1, time: String = "2026-11-23T10:00:00.1234567Z") -> String {
    eventXML(id: 4625, record: record, time: time, data: [
        ("SubjectUserSid", "S-1-5-18"), ("SubjectUserName", "EXCH01$"), ("TargetUserSid", "S-1-0-0"), ("TargetUserName", user),
        ("TargetDomainName", "CORP"), ("Status", "0xc000006d"), ("FailureReason", "%%2313"), ("SubStatus", sub), ("LogonType", String(type)),
        ("LogonProcessName", "Advapi  "), ("AuthenticationPackageName", "Negotiate"), ("WorkstationName", "EXCH01"), ("IpAddress", ip), ("IpPort", "51234"),
    ])
}

@Suite("Windows events")
struct WindowsEventTests {
    @Test("Event XML: events split anywhere across reads, several on a line, inside <Events>, entities; a malformed one is reported by offset and skipped")
    func eventXMLReader() {
        let one = failure4625(user: "a&amp;b", ip: "192.0.2.1", record: 1)
        let two = failure4625(user: "carol", ip: "192.0.2.2", record: 2)
        let broken = "<Event><System><EventID>4625</EventID></Sys></Event>"
        let text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Events>\n" + one + two + "\n" + broken + "\n<!-- a comment -->" + failure4625(user: "dave", ip: "192.0.2.3", record: 3) + "</Events>\n"
        let bytes = Array(text.utf8)
        for step in [1, 7, 100, bytes.count] {
            var reader = EventXMLReader()
            var events: [WindowsEvent] = []
            var at = 0
            while at < bytes.count {
                reader.feed(bytes[at..<min(bytes.count, at + step)]) { if let e = WindowsEvent(node: $0) { events.append(e) } }
                at += step
            }
            reader.finish()
            #expect(events.map(\.recordID) == [1, 2, 3], "read \(step) bytes at a time")
            #expect(events.first?["TargetUserName"] == "a&b")
            #expect(events.first?["LogonProcessName"] == "Advapi  ")  // its own spaces are kept
            #expect(events.first?.time == Timestamp(nanoseconds: Timestamp.epochSeconds(year: 2026, month: 11, day: 23, hour: 10, minute: 0, second: 0)! * 1_000_000_000 + 123_456_700))
            #expect(reader.malformed.count == 1)
            let offset = bytes.count - Array(("\n" + broken + "\n<!-- a comment -->" + failure4625(user: "dave", ip: "192.0.2.3", record: 3) + "</Events>\n").utf8).count + 1
            #expect(reader.malformed.first.map { $0.offset >= offset && $0.offset < offset + broken.utf8.count } == true, "\(reader.malformed)")
            #expect(reader.malformed.first?.reason.contains("</Sys>") == true)
        }
        // An event left open at the end is reported, not lost silently.
        var reader = EventXMLReader()
        reader.feed(Array(one.prefix(200).utf8)) { _ in Issue.record("no event is complete") }
        reader.finish()
        #expect(reader.malformed.count == 1 && reader.malformed[0].reason.contains("ends inside"))
    }

    @Test("the logon each event means: 4625, 4624, 4771 (::ffff: address), 4776 (no address), 4740, 529 and 528 by position, 680")
    func logons() throws {
        func logon(_ xml: String) -> WindowsLogon? {
            var reader = EventXMLReader()
            var found: WindowsLogon?
            reader.feed(Array(xml.utf8)) { found = WindowsEvent(node: $0).flatMap(WindowsLogon.init(event:)) }
            return found
        }
        let failed = try #require(logon(failure4625(user: "alice", ip: "::ffff:192.0.2.9", type: 8)))
        #expect(failed.result == .failure && failed.username == "alice" && failed.domain == "CORP" && failed.client == IPAddress("192.0.2.9"))
        #expect(failed.reason == "wrong password" && failed.logonTypeName == "network cleartext" && failed.rule == "4625_failure" && failed.port == 51234)
        #expect(logon(failure4625(user: "x", ip: "192.0.2.9", sub: "0xc0000064"))?.reason == "no such user")
        #expect(logon(failure4625(user: "x", ip: "-", sub: "0xC0000234"))?.client == nil)
        #expect(logon(failure4625(user: "x", ip: "-", sub: "0xC0000234"))?.reason == "account locked out")
        let ok = try #require(logon(eventXML(id: 4624, data: [("TargetUserName", "alice"), ("TargetDomainName", "CORP"), ("LogonType", "3"), ("IpAddress", "2001:db8::5"), ("IpPort", "0")])))
        #expect(ok.result == .success && ok.client == IPAddress("2001:db8::5") && ok.port == nil && ok.logonTypeName == "network")
        // The system's own logons are not logons of people.
        #expect(logon(eventXML(id: 4624, data: [("TargetUserName", "SYSTEM"), ("LogonType", "5"), ("IpAddress", "-")])) == nil)
        #expect(logon(eventXML(id: 4624, data: [("TargetUserName", "EXCH01$"), ("LogonType", "3"), ("IpAddress", "10.0.0.5")])) == nil)
        let kerberos = try #require(logon(eventXML(id: 4771, data: [("TargetUserName", "bob"), ("ServiceName", "krbtgt/CORP"), ("Status", "0x18"), ("IpAddress", "::ffff:10.1.2.3"), ("IpPort", "50000")])))
        #expect(kerberos.result == .failure && kerberos.client == IPAddress("10.1.2.3") && kerberos.reason == "wrong password" && kerberos.rule == "4771_kerberos_failure")
        let ntlm = try #require(logon(eventXML(id: 4776, data: [("PackageName", "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0"), ("TargetUserName", "carol"), ("Workstation", "KIOSK7"), ("Status", "0xc000006a")])))
        #expect(ntlm.result == .failure && ntlm.client == nil && ntlm.workstation == "KIOSK7" && ntlm.rule == "4776_ntlm_failure")
        #expect(logon(eventXML(id: 4776, data: [("TargetUserName", "carol"), ("Workstation", "KIOSK7"), ("Status", "0x0")]))?.result == .success)
        let locked = try #require(logon(eventXML(id: 4740, data: [("TargetUserName", "dave"), ("TargetDomainName", "CORP"), ("CallerComputerName", "EXCH01")])))
        #expect(locked.result == .lockout && locked.workstation == "EXCH01")
        // Windows 2003: unnamed Data elements, by position.
        let legacy = (1...13).map { ("", ["erin", "CORP", "8", "Advapi", "Negotiate", "EXCH01", "-", "-", "-", "-", "-", "203.0.113.5", "4000"][$0 - 1]) }
        let xml2003 = eventXML(id: 529, data: []).replacingOccurrences(of: "<EventData></EventData>", with: "<EventData>" + legacy.map { "<Data>\($0.1)</Data>" }.joined() + "</EventData>")
            .replacingOccurrences(of: "Microsoft-Windows-Security-Auditing", with: "Security")
        let old = try #require(logon(xml2003))
        #expect(old.result == .failure && old.username == "erin" && old.client == IPAddress("203.0.113.5") && old.logonType == 8 && old.reason == "bad user name or password")
        let xml539 = xml2003.replacingOccurrences(of: "<EventID>529</EventID>", with: "<EventID>539</EventID>")
        #expect(logon(xml539)?.reason == "account locked out")
        let xml680 = eventXML(id: 680, data: []).replacingOccurrences(of: "<EventData></EventData>", with: "<EventData><Data>MICROSOFT_AUTHENTICATION_PACKAGE_V1_0</Data><Data>frank</Data><Data>WS1</Data><Data>0xC000006A</Data></EventData>")
        #expect(logon(xml680)?.result == .failure && logon(xml680)?.username == "frank")
        // Positive control for the provider check: the same 4625 from another provider is not a logon.
        #expect(logon(failure4625(user: "alice", ip: "192.0.2.9").replacingOccurrences(of: "Microsoft-Windows-Security-Auditing", with: "Some-App").replacingOccurrences(of: "<Channel>Security</Channel>", with: "<Channel>Application</Channel>")) == nil)
    }

    @Test("forwarded JSON: Winlogbeat's ECS event and NXLog's to_json(), behind a syslog prefix too")
    func forwardedJSON() throws {
        let beat = #"{"@timestamp":"2026-11-23T10:00:01.500Z","event":{"code":"4625","action":"logon-failed","outcome":"failure"},"winlog":{"event_id":4625,"record_id":77,"channel":"Security","computer_name":"EXCH01","provider_name":"Microsoft-Windows-Security-Auditing","event_data":{"TargetUserName":"admin","TargetDomainName":"CORP","IpAddress":"198.51.100.7","IpPort":"40000","LogonType":"8","Status":"0xc000006d","SubStatus":"0xc0000064"}},"source":{"ip":"198.51.100.7","port":40000}}"#
        let event = try #require(ForwardedJSON.event(in: Array(beat.utf8)[...]))
        #expect(event.eventID == 4625 && event.recordID == 77 && event.computer == "EXCH01" && event["LogonType"] == "8")
        let logon = try #require(WindowsLogon(event: event))
        #expect(logon.client == IPAddress("198.51.100.7") && logon.username == "admin" && logon.reason == "no such user")
        // ECS-only address (a processor removed event_data.IpAddress).
        let ecs = beat.replacingOccurrences(of: #""IpAddress":"198.51.100.7","#, with: "")
        #expect(ForwardedJSON.event(in: Array(ecs.utf8)[...]).flatMap(WindowsLogon.init(event:))?.client == IPAddress("198.51.100.7"))
        let nx = #"<13>Nov 23 10:00:02 EXCH01 nxlog: {"EventTime":"2026-11-23 10:00:02","Hostname":"EXCH01","EventID":4771,"SourceName":"Microsoft-Windows-Security-Auditing","Channel":"Security","RecordNumber":78,"Severity":"AUDIT_FAILURE","TargetUserName":"bob","Status":"0x18","IpAddress":"::ffff:10.9.8.7","IpPort":"1234"}"#
        let kerberos = try #require(ForwardedJSON.event(in: Array(nx.utf8)[...]))
        #expect(kerberos.eventID == 4771 && kerberos.recordID == 78 && kerberos["Severity"] == nil && kerberos["TargetUserName"] == "bob")
        #expect(WindowsLogon(event: kerberos)?.client == IPAddress("10.9.8.7"))
        #expect(ForwardedJSON.event(in: Array(#"{"time":"x","event":"auth"}"#.utf8)[...]) == nil)
    }

    @Test("the windows line format: attempts at their own time, several events on one line, multi-line XML, JSON; no address, no attempt")
    func lineFormat() throws {
        var parser = LogParser(formats: [WindowsFormat()], parseTimes: true, now: Timestamp(seconds: 1_800_000_000))
        var found: [LogEvidence] = []
        func feed(_ line: String) {
            if let e = parser.parse(Array(line.utf8)[...]) {
                found.append(e)
                while let more = parser.next() { found.append(more) }
            }
        }
        feed(failure4625(user: "u1", ip: "192.0.2.1", time: "2026-11-23T10:00:00Z") + failure4625(user: "u2", ip: "192.0.2.1") + failure4625(user: "u3", ip: "-"))
        let indented = failure4625(user: "u4", ip: "192.0.2.4").replacingOccurrences(of: "><", with: ">\n  <")
        for line in indented.split(separator: "\n") { feed(String(line)) }
        feed(#"{"EventTime":"2026-11-23 10:00:05","Hostname":"EXCH01","EventID":4625,"Channel":"Security","TargetUserName":"u5","IpAddress":"192.0.2.5","LogonType":3,"SubStatus":"0xc000006a"}"#)
        feed("Nov 23 10:00:06 mx postfix/smtpd[1]: connect from unknown[192.0.2.6]")
        #expect(found.map(\.username) == ["u1", "u2", "u4", "u5"])
        #expect(found.allSatisfy { $0.source == .windows && $0.rule == "4625_failure" && $0.outcome == .failure })
        #expect(found[0].time == Timestamp(seconds: Timestamp.epochSeconds(year: 2026, month: 11, day: 23, hour: 10, minute: 0, second: 0)!))
        #expect(found[0].attempt(at: found[0].time!).source == .windows)
        #expect(parser.matchedCount == 3)  // lines, not events: the three-event line once, the indented event's last line, the JSON
        let counts = Dictionary(uniqueKeysWithValues: parser.ruleCounts.map { ($0.rule, $0.count) })
        #expect(counts["windows/4625_failure"] == 4)
    }

    @Test("what replay takes a file to be")
    func sniffing() {
        func kind(_ bytes: [UInt8]) -> ReplayInput { ReplayInput.sniff(bytes[...]) }
        #expect(kind(Array("ElfFile\u{0}".utf8) + [1, 0, 0]) == .evtx)
        #expect(kind(Array("\u{FEFF}<?xml version='1.0'?><Events><Event xmlns='x'>".utf8)) == .eventXML)
        #expect(kind(Array(failure4625(user: "a", ip: "-").utf8)) == .eventXML)
        #expect(kind(Array(#"{"winlog":{"event_id":4625}}"#.utf8)) == .windowsJSON)
        #expect(kind(Array(#"<13>Nov 23 10:00:02 EXCH01 nxlog: {"EventID":4625}"#.utf8)) == .windowsJSON)
        #expect(kind(Array("Nov 23 02:03:14 mx postfix/smtpd[1]: connect".utf8)) == .text)
        #expect(kind(Array(#"{"time":"2026-11-23T00:00:00Z","event":"auth"}"#.utf8)) == .text)
        #expect(kind([]) == .text)
        func unknown(_ bytes: [UInt8], _ says: String) {
            guard case .unknown(let what) = kind(bytes) else { Issue.record("\(bytes.prefix(8)) was taken for a log"); return }
            #expect(what.contains(says), "\(what)")
        }
        unknown([0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0], "pcap")
        unknown([0x0A, 0x0D, 0x0D, 0x0A, 0x1C, 0, 0, 0], "pcapng")
        unknown([0x1F, 0x8B, 8, 0], "gzip")
        unknown([0xFF, 0xFE, 0x3C, 0x00], "UTF-16")
        unknown(Array("ElfChnk\u{0}".utf8), "chunk")
        unknown(Array("<html><body>".utf8), "not Windows Event XML")
        unknown([0x00, 0x01, 0x02, 0x03, 0x99, 0x98, 0x00, 0x00], "binary data of no known format (it starts with 00 01 02 03 99 98 00 00)")
    }

    @Test("replay: a file of no known format is an error naming what it looked like; text that is no log is too; a log without attempts says so")
    func replayRefuses() throws {
        let directory = NSTemporaryDirectory() + "windows-replay-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func write(_ name: String, _ bytes: [UInt8]) -> String {
            let path = directory + "/" + name
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            return path
        }
        var replayer = try Replayer(policy: GuardPolicy(), formats: LogFormats.builtIn, patterns: [], now: Timestamp(seconds: 1_800_000_000))
        let pcap = write("capture.pcap", [0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0] + [UInt8](repeating: 0, count: 16))
        #expect { try replayer.read(path: pcap) } throws: { "\($0)".contains("pcap packet capture") && "\($0)".contains(".evtx files") }
        let prose = write("notes.txt", Array("Dear admin,\nthe server is slow.\n".utf8))
        #expect { try replayer.read(path: prose) } throws: { "\($0)".contains("no line has a syslog or log time prefix") && "\($0)".contains("Dear admin") }
        let quiet = write("mail.log", Array("Nov 23 02:03:14 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]\n".utf8))
        try replayer.read(path: quiet)
        let xml = write("spray.xml", Array((0..<6).map { failure4625(user: "user\($0)", ip: "203.0.113.9", record: $0 + 1, time: "2026-11-23T10:00:0\($0)Z") }.joined().utf8))
        try replayer.read(path: xml)
        let report = replayer.report()
        #expect(report.text.contains("mail.log: text log, 1 lines, no AUTH attempt in it"))
        #expect(report.text.contains("spray.xml: Windows Security events (Event XML), 6 events, 6 AUTH attempts"))
        #expect(report.failures == 6 && report.topClients.first?.0 == "203.0.113.9")
        #expect(report.bans.contains { $0.key.description == "203.0.113.9" })  // the spray is banned: the positive control for the quiet log
        #expect(report.logons?.accounts.count == 6 && report.logons?.sources["203.0.113.9"]?.peers.count == 6)
    }

    @Test("syslog sources: parsed and printed; bad ones say how to write them")
    func syslogSource() throws {
        let udp = try WatchSource(parsing: "windows syslog:udp:0.0.0.0:5140")
        #expect(udp.kind == .syslog && udp.transport == "udp" && udp.host == "0.0.0.0" && udp.port == 5140 && udp.description == "windows syslog:udp:0.0.0.0:5140")
        let tcp = try WatchSource(parsing: "windows syslog:tcp:[::1]:1514")
        #expect(tcp.host == "::1" && tcp.description == "windows syslog:tcp:[::1]:1514")
        for bad in ["windows syslog:udp:localhost:514", "windows syslog:sctp:0.0.0.0:514", "windows syslog:udp:0.0.0.0:70000", "windows syslog:udp:0.0.0.0"] {
            #expect(throws: ConfigValueError.self, "\(bad)") { try WatchSource(parsing: bad) }
        }
    }

    @Test("the syslog receiver: UDP datagrams, TCP lines and octet-counted frames; a taken port is a clear error")
    func syslogListener() throws {
        let udp = try SyslogListener(transport: .udp, host: "127.0.0.1", port: 0)
        let tcp = try SyslogListener(transport: .tcp, host: "127.0.0.1", port: 0)
        defer { udp.stop(); tcp.stop() }
        #expect { try SyslogListener(transport: .tcp, host: "127.0.0.1", port: tcp.boundPort) } throws: { "\($0)".contains("cannot listen") && "\($0)".contains("\(tcp.boundPort)") }
        func send(_ type: Int32, _ port: Int, _ chunks: [String]) {
            let fd = socket(AF_INET, type, 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            for chunk in chunks { _ = chunk.withCString { Glibc.send(fd, $0, strlen($0), 0) } }
        }
        send(Int32(SOCK_DGRAM.rawValue), udp.boundPort, ["<13>one\n", "<13>two"])
        send(Int32(SOCK_STREAM.rawValue), tcp.boundPort, ["<13>three\n<13>fo", "ur\n<13>five"])
        send(Int32(SOCK_STREAM.rawValue), tcp.boundPort, ["7 <13>six9 <13>sev", "en"])
        var messages: [String] = []
        for _ in 0..<200 where messages.count < 7 {
            udp.poll { messages.append(String(decoding: $0, as: UTF8.self)) }
            tcp.poll { messages.append(String(decoding: $0, as: UTF8.self)) }
            usleep(10_000)
        }
        #expect(Set(messages) == ["<13>one", "<13>two", "<13>three", "<13>four", "<13>five", "<13>six", "<13>seven"])
    }
}
