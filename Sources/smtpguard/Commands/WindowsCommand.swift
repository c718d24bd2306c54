// `smtpguard windows dump FILE`: the records of a Windows event log (.evtx) as XML or JSON
// lines, in the file's order, read with LogWatch's own .evtx reader (no Windows API, no
// Python). Damaged chunks and records are told on standard error and skipped.

import ArgumentParser
import GuardCore
import LogWatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct WindowsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "windows",
        abstract: "Read Windows event logs (.evtx).",
        subcommands: [Dump.self]
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case xml, json
    }

    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the records of an .evtx file, one per line.",
            discussion: """
                xml: each record's event as one line of XML (<Event …>…</Event>), values written as \
                python-evtx writes them, times as 2020-09-09T13:18:23.627951Z. json: one object per \
                record: record_id, time (System/TimeCreated), event_id, computer, channel, provider \
                and fields (EventData or UserData, by name). Records come in the file's order.

                Damaged chunks and records (bad checksums, a record that does not parse, a file cut \
                short) are skipped and told on standard error with their file offsets; the rest of \
                the file is read. A last line on standard error counts the records and the damaged \
                chunks. The exit status is 0 when any record was read.
                """
        )

        @Argument(help: ArgumentHelp("The .evtx file.", valueName: "file"))
        var file: String

        @Option(name: .long, help: ArgumentHelp("Output format: xml or json.", valueName: "format"))
        var format: Format = .xml

        @Flag(name: .long, help: "Print only the damage found (on standard output), not the records.")
        var damaged = false

        func run() throws {
            var reader: EvtxReader
            do {
                reader = try EvtxReader(path: self.file)
            } catch {
                throw StartupError("\(error)")
            }
            var out = OutputBuffer(fd: STDOUT_FILENO)
            var reported = 0
            func report(_ damage: [EvtxDamage]) {
                while reported < damage.count {
                    if self.damaged {
                        out.write(damage[reported].description)
                        out.write("\n")
                    } else {
                        Self.standardError(damage[reported].description + "\n")
                    }
                    reported += 1
                }
            }
            do {
                while let record = try reader.next() {
                    report(reader.damaged)
                    if self.damaged { continue }
                    switch self.format {
                    case .xml: out.write(record.node.xml)
                    case .json: out.write(Self.json(record))
                    }
                    out.write("\n")
                }
            } catch {
                out.flush()
                throw StartupError("\(error)")
            }
            report(reader.damaged)
            out.flush()
            let skipped = reader.damaged.filter(\.skipsChunk).count
            Self.standardError("\(reader.recordsRead) records, \(skipped) damaged chunks skipped\n")
            if reader.recordsRead == 0 { throw ExitCode(1) }
        }

        /// {"record_id":…,"time":…,"event_id":…,"computer":…,"channel":…,"provider":…,"fields":{…}}
        static func json(_ record: EvtxRecord) -> String {
            var json = JSONObjectWriter()
            json.raw("record_id", String(record.recordID))
            guard let event = record.event else {
                json.raw("time", "null")
                json.raw("event_id", "null")
                return json.finish()
            }
            json.raw("time", event.time.map { "\"\(WindowsTime.iso8601($0))\"" } ?? "null")
            json.int("event_id", event.eventID)
            json.string("computer", event.computer)
            json.string("channel", event.channel)
            json.string("provider", event.provider)
            var fields = "{"
            for (i, field) in event.fields.enumerated() {
                if i > 0 { fields += "," }
                JSONObjectWriter.appendQuoted(field.name, to: &fields)
                fields += ":"
                JSONObjectWriter.appendQuoted(field.value, to: &fields)
            }
            fields += "}"
            json.raw("fields", fields)
            return json.finish()
        }

        static func standardError(_ text: String) {
            var copy = text
            copy.withUTF8 { bytes in OutputBuffer.writeAll(fd: STDERR_FILENO, bytes) }
        }
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif

/// Output gathered into 256 KiB before each write(2).
struct OutputBuffer {
    let fd: Int32
    private var buffer: [UInt8] = []
    private static let limit = 256 * 1024

    init(fd: Int32) {
        self.fd = fd
        self.buffer.reserveCapacity(Self.limit + 4096)
    }

    mutating func write(_ text: String) {
        self.buffer.append(contentsOf: text.utf8)
        if self.buffer.count >= Self.limit { self.flush() }
    }

    mutating func flush() {
        self.buffer.withUnsafeBufferPointer { Self.writeAll(fd: self.fd, $0) }
        self.buffer.removeAll(keepingCapacity: true)
    }

    static func writeAll(fd: Int32, _ bytes: UnsafeBufferPointer<UInt8>) {
        var done = 0
        while done < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }  // a closed pipe: nothing more to write to
            done += n
        }
    }
}
