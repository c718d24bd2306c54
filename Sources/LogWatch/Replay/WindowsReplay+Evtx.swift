// `replay` of an .evtx file: records read chunk by chunk (memory does not grow with the file);
// a damaged chunk or record is reported with its offset and skipped, the others are read.

import GuardCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Replayer {
    mutating func readEvtx(path: String, input: inout ReplayReport.Input) throws {
        var reader: EvtxReader
        do {
            reader = try EvtxReader(path: path)
        } catch {
            throw ReplayError(path: path, reason: "\(error)".hasPrefix(path + ": ") ? String("\(error)".dropFirst(path.count + 2)) : "\(error)")
        }
        var found: [LogEvidence] = []
        var notEvents = 0
        while let record = try reader.next() {
            guard let event = record.event else {
                notEvents += 1
                continue
            }
            self.take(event, written: record.written, found: &found)
        }
        var info = stat()
        if stat(path, &info) == 0 { self.bytes += Int(info.st_size) }
        input.units = reader.recordsRead
        input.attempts = found.count
        input.problems = reader.damaged.map { damage in
            let text = damage.description
            return text.hasPrefix(path + ": ") ? String(text.dropFirst(path.count + 2)) : text
        }
        if notEvents > 0 { input.problems.append("\(notEvents) records without System/EventID were skipped") }
        self.evidence += found
    }
}
