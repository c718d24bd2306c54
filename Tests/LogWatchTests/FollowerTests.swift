// Following files as logrotate, copytruncate and careless administrators treat them.

import Foundation
import GuardCore
import Testing

@testable import LogWatch

@Suite("Following files")
struct FollowerTests {
    final class Collector {
        var lines: [String] = []
        var notices: [FollowNotice] = []
    }

    static func directory() -> String {
        let path = NSTemporaryDirectory() + "smtpguard-follow-\(UInt64.random(in: 0...UInt64.max))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func append(_ path: String, _ text: String) {
        let bytes = Array(text.utf8)
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    static func poll(_ follower: FileFollower, _ collector: Collector) {
        follower.poll(line: { collector.lines.append(String(decoding: $0, as: UTF8.self)) }, notice: { collector.notices.append($0) })
    }

    @Test("appended lines, a line split across two writes, rotation by rename, re-creation")
    func rotation() throws {
        let dir = Self.directory()
        let log = dir + "/mail.log"
        Self.append(log, "old line before start\n")
        let follower = FileFollower(path: log, resume: nil, startAtEnd: true)
        let c = Collector()
        Self.poll(follower, c)
        #expect(c.lines.isEmpty)  // starts at the end
        Self.append(log, "one\ntw")
        Self.poll(follower, c)
        #expect(c.lines == ["one"])
        Self.append(log, "o\n")
        Self.poll(follower, c)
        #expect(c.lines == ["one", "two"])
        // logrotate: the daemon writes a last line, the file is renamed, a new one created.
        Self.append(log, "three\n")
        try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
        Self.append(log, "four\n")
        Self.poll(follower, c)
        #expect(c.lines == ["one", "two", "three", "four"])
        #expect(c.notices.contains(.rotated(path: log)))
        // Gone, then back.
        try FileManager.default.removeItem(atPath: log)
        Self.poll(follower, c)
        Self.poll(follower, c)
        Self.append(log, "five\n")
        Self.poll(follower, c)
        #expect(c.lines == ["one", "two", "three", "four", "five"])
    }

    @Test("truncation in place (copytruncate) starts again from the top")
    func truncation() {
        let dir = Self.directory()
        let log = dir + "/mail.log"
        Self.append(log, "a long first line\nanother line\n")
        let follower = FileFollower(path: log, resume: nil, startAtEnd: false)
        let c = Collector()
        Self.poll(follower, c)
        #expect(c.lines == ["a long first line", "another line"])
        _ = truncate(log, 0)
        Self.append(log, "after\n")
        Self.poll(follower, c)
        #expect(c.lines.last == "after")
        #expect(c.notices.contains(.truncated(path: log)))
    }

    @Test("a 100 kB line is cut, and the lines after it arrive whole; invalid UTF-8 passes as bytes")
    func longLinesAndBadBytes() {
        let dir = Self.directory()
        let log = dir + "/mail.log"
        let follower = FileFollower(path: log, resume: nil, startAtEnd: false, maxLineLength: 16 * 1024)
        let c = Collector()
        Self.poll(follower, c)
        Self.append(log, String(repeating: "x", count: 100_000) + "\nnext\n")
        Self.poll(follower, c)
        #expect(c.lines.count == 2 && c.lines[0].utf8.count == 16 * 1024 && c.lines[1] == "next")
        #expect(follower.truncatedLines == 1)
        let fd = open(log, O_WRONLY | O_APPEND)
        let bad: [UInt8] = Array("Nov 23 00:00:01 mx postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL PLAIN authentication failed: x, sasl_username=".utf8) + [0xFF, 0xFE, 0x41, 0x0A]
        _ = bad.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        var parser = LogParser(formats: [PostfixFormat()], parseTimes: false, now: Timestamp(seconds: 0))
        var evidence: [LogEvidence] = []
        follower.poll(line: { if let e = parser.parse($0) { evidence.append(e) } }, notice: { _ in })
        #expect(evidence.count == 1 && evidence[0].client == IPAddress("192.0.2.1") && evidence[0].username == "\u{FFFD}\u{FFFD}A")
    }

    @Test("a saved position resumes without reading a line twice; a rotated file is not resumed into")
    func resume() throws {
        let dir = Self.directory()
        let log = dir + "/mail.log"
        Self.append(log, "1\n2\n")
        let first = FileFollower(path: log, resume: nil, startAtEnd: false)
        let c = Collector()
        Self.poll(first, c)
        Self.append(log, "3 partial")
        Self.poll(first, c)
        let saved = try #require(first.position)
        #expect(saved.offset == 4)  // the partial line is read again next time
        Self.append(log, " done\n4\n")
        let second = FileFollower(path: log, resume: saved, startAtEnd: true)
        let c2 = Collector()
        Self.poll(second, c2)
        #expect(c2.lines == ["3 partial done", "4"])
        // The same name, another file: the saved offset does not apply.
        try FileManager.default.removeItem(atPath: log)
        Self.append(log, "new\n")
        let third = FileFollower(path: log, resume: saved, startAtEnd: true)
        let c3 = Collector()
        Self.poll(third, c3)
        #expect(c3.lines.isEmpty)  // a new file with no position of its own starts at its end at start-up
    }

    @Test("positions survive a save and load; a damaged book names its line")
    func positionBook() throws {
        let dir = Self.directory()
        var book = PositionBook()
        book.files["/var/log/mail.log"] = FilePosition(device: 1, inode: 2, offset: 3)
        book.directories["/x"] = ("RECV1.LOG", FilePosition(device: 4, inode: 5, offset: 6))
        book.cursors["unit=postfix.service"] = "s=abc;i=1"
        #expect(book.save(path: dir + "/pos") == nil)
        #expect(try PositionBook.load(path: dir + "/pos") == book)
        Self.append(dir + "/bad", "file\t/x\t1\t2\t3\ngarbage\n")
        #expect(throws: PositionBook.Damaged.self) { try PositionBook.load(path: dir + "/bad") }
        #expect(try PositionBook.load(path: dir + "/missing") == PositionBook())
    }

    @Test("a directory of rotating files: the newest by name is followed, the old one finished first")
    func directoryFollower() {
        let dir = Self.directory()
        Self.append(dir + "/RECV2026112301-1.LOG", "old\n")
        let follower = DirectoryFollower(directory: dir, pattern: "RECV*.LOG", resume: nil, startAtEnd: false)
        let c = Collector()
        follower.poll(line: { c.lines.append(String(decoding: $0, as: UTF8.self)) }, notice: { _ in })
        Self.append(dir + "/RECV2026112301-1.LOG", "old 2\n")
        Self.append(dir + "/RECV2026112302-1.LOG", "new\n")
        Self.append(dir + "/other.txt", "ignored\n")
        follower.poll(line: { c.lines.append(String(decoding: $0, as: UTF8.self)) }, notice: { _ in })
        #expect(c.lines == ["old", "old 2", "new"])
        #expect(follower.position?.name == "RECV2026112302-1.LOG")
    }

    @Test("journald: entries from journalctl's JSON, byte-array messages, the cursor kept, journalctl restarted")
    func journal() throws {
        let dir = Self.directory()
        let fixture = dir + "/journalctl"
        let args = dir + "/args"
        // A stand-in journalctl: prints two entries and exits (as journalctl does when the journal goes away).
        let script = """
            #!/bin/sh
            echo "$@" >> \(args)
            echo '{"__CURSOR":"s=1;i=1","__REALTIME_TIMESTAMP":"1795000000000000","SYSLOG_IDENTIFIER":"postfix/smtpd","MESSAGE":"warning: unknown[192.0.2.10]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"}'
            echo '{"__CURSOR":"s=1;i=2","SYSLOG_IDENTIFIER":"dovecot","MESSAGE":[97,117,116,104,58,32,73,110,102,111,58,32,112,97,115,115,119,100,45,102,105,108,101,40,98,111,98,44,49,57,50,46,48,46,50,46,49,49,41,58,32,80,97,115,115,119,111,114,100,32,109,105,115,109,97,116,99,104]}'
            echo 'not json'
            """
        try script.write(toFile: fixture, atomically: true, encoding: .utf8)
        chmod(fixture, 0o755)
        let follower = JournalFollower(executable: fixture, units: ["postfix@-"], identifiers: ["dovecot"], cursor: nil)
        var parser = LogParser(formats: [PostfixFormat(), DovecotFormat()], parseTimes: false, now: Timestamp(seconds: 0))
        var found: [LogEvidence] = []
        var notices: [String] = []
        let deadline = ContinuousClock.now + .seconds(10)
        while found.count < 2 && ContinuousClock.now < deadline {
            follower.poll(entry: { entry in if let e = parser.parse(message: entry.message[...], program: entry.program[...]) { found.append(e) } }, notice: { notices.append($0) })
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(found.map(\.client) == [IPAddress("192.0.2.10")!, IPAddress("192.0.2.11")!])
        #expect(found[1].username == "bob")
        #expect(follower.cursor == "s=1;i=2")
        // It exits; the next start resumes after the cursor.
        let restartBy = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < restartBy {
            follower.poll(entry: { _ in }, notice: { notices.append($0) })
            if (try? String(contentsOfFile: args, encoding: .utf8))?.contains("--after-cursor=s=1;i=") == true { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        follower.stop()
        let calls = try String(contentsOfFile: args, encoding: .utf8)
        // Postfix's unit OR Dovecot's identifier, as journalctl matches ("+"), the unit named in full.
        #expect(calls.contains("--follow --output=json --no-pager --lines=0 _SYSTEMD_UNIT=postfix@-.service + SYSLOG_IDENTIFIER=dovecot"), "\(calls)")
        #expect(calls.contains("--after-cursor=s=1;i="))
        #expect(notices.contains { $0.contains("journalctl exited") })
    }
}
