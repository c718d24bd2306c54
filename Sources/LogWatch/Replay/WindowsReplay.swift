// `replay` of Windows Security events: Event XML and forwarded JSON streamed from the file,
// .evtx read chunk by chunk (WindowsReplay+Evtx). Each event goes into the logon summary;
// each logon with a client address becomes an attempt for the engine, at its TimeCreated.

import GuardCore

extension Replayer {
    /// One event: counted in the summary; its logon, when it has an address, is an attempt.
    mutating func take(_ event: WindowsEvent, written: Timestamp?, found: inout [LogEvidence]) {
        var summary = self.logons ?? LogonSummary()
        summary.add(event: event)
        if let logon = WindowsLogon(event: event) {
            summary.add(logon)
            if logon.result != .lockout, let client = logon.client {
                let time = logon.time ?? written ?? found.last?.time ?? self.now
                self.windowsRules[logon.rule, default: 0] += 1
                found.append(LogEvidence(format: WindowsFormat.formatName, rule: logon.rule, client: client, username: logon.username, outcome: logon.outcome, count: 1, time: time))
            }
        }
        self.logons = summary
    }

    mutating func readEventXML(fd: Int32, head: [UInt8], path: String, input: inout ReplayReport.Input) throws {
        var reader = EventXMLReader()
        var found: [LogEvidence] = []
        var nodes: [EventNode] = []
        var notEvents = 0
        let bytes = try self.chunks(fd: fd, head: head, path: path) { chunk in
            reader.feed(chunk) { nodes.append($0) }
            for node in nodes {
                if let event = WindowsEvent(node: node) { self.take(event, written: nil, found: &found) } else { notEvents += 1 }
            }
            nodes.removeAll(keepingCapacity: true)
        }
        reader.finish()
        self.bytes += bytes
        input.units = reader.events
        input.attempts = found.count
        input.problems = reader.malformed.prefix(100).map { "\($0)" }
        if notEvents > 0 { input.problems.append("\(notEvents) <Event> elements without System/EventID were skipped") }
        if reader.events == 0 && reader.malformed.isEmpty {
            throw ReplayError(path: path, reason: "not a log replay reads: XML without a single <Event> element. replay reads \(ReplayInput.readable)")
        }
        self.evidence += found
    }

    mutating func readWindowsJSON(fd: Int32, head: [UInt8], path: String, input: inout ReplayReport.Input) throws {
        var splitter = LineSplitter(maxLineLength: 256 * 1024)
        var found: [LogEvidence] = []
        var lines = 0
        var unreadable = 0
        var firstUnreadable: Int?
        func take(_ line: ArraySlice<UInt8>) {
            lines += 1
            guard line.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }) else { return }
            if let event = ForwardedJSON.event(in: line) {
                self.take(event, written: nil, found: &found)
            } else {
                unreadable += 1
                if firstUnreadable == nil { firstUnreadable = lines }
            }
        }
        let bytes = try self.chunks(fd: fd, head: head, path: path) { chunk in splitter.feed(chunk) { take($0) } }
        splitter.flush { take($0) }
        self.bytes += bytes
        self.truncatedLines += splitter.truncatedLines
        input.units = lines
        input.attempts = found.count
        if unreadable > 0 { input.problems.append("\(unreadable) lines are not a Winlogbeat or NXLog event object (the first is line \(firstUnreadable!)); they were skipped") }
        self.evidence += found
    }
}
