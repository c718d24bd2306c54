import NIOCore
import SMTPWire
import Testing

@Suite struct ReplyReaderTests {
    @Test func repliesAcrossReadsAndItsFailures() throws {
        var reader = SMTPReplyReader(maxLine: 64)
        var first = ByteBuffer(string: "250-mx.example\r\n250-PIPEL")
        reader.append(&first)
        #expect(try reader.next() == nil)
        #expect(reader.hasBufferedInput)
        var second = ByteBuffer(string: "INING\r\n250 AUTH PLAIN\r\n220 ready\r\n")
        reader.append(&second)
        #expect(try reader.next() == SMTPReply(code: 250, lines: ["mx.example", "PIPELINING", "AUTH PLAIN"]))
        #expect(try reader.next() == SMTPReply(code: 220, "ready"))
        #expect(try reader.next() == nil)
        #expect(!reader.hasBufferedInput)

        var bare = SMTPReplyReader(maxLine: 64)
        var input = ByteBuffer(string: "250 ok\n")
        bare.append(&input)
        #expect(throws: SMTPReplyReader.Failure.bareNewline) { try bare.next() }

        var long = SMTPReplyReader(maxLine: 16)
        input = ByteBuffer(string: "250 " + String(repeating: "x", count: 40) + "\r\n")
        long.append(&input)
        #expect(throws: SMTPReplyReader.Failure.tooLong) { try long.next() }

        var junk = SMTPReplyReader(maxLine: 64)
        input = ByteBuffer(string: "hello\r\n")
        junk.append(&input)
        #expect(throws: SMTPReplyReader.Failure.malformed(.malformed)) { try junk.next() }
    }
}
