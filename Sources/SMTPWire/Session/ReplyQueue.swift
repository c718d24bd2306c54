// ReplyQueue: the order of replies in one session. Every command the backend sees leaves
// one entry saying what its reply answers; the guard's own replies wait their turn in the
// same queue, so a pipelining client hears every answer in the order it asked (RFC 2920).
// A reply with no entry ends the session (the backend spoke out of turn). Lines that must
// wait until every reply is in (AUTH and STARTTLS behind others, a MAIL or RCPT the sending
// limits must count) are held here too.

import NIOCore

/// What a backend reply answers.
enum PendingReply: Equatable {
    case ehlo
    case helo
    case mail
    case rset
    case data
    case dataEnd
    case quit
    case relay
    case authChallenge
    case authLoginPrompt
    case authResult
    /// A reply nobody hears (the backend's answer to a cancelled AUTH exchange).
    case swallow
    /// A reply of the guard's own, sent when every reply before it has been.
    case local(SMTPReply)
}

struct ReplyQueue {
    /// Commands a client may have waiting for replies at once; past that the guard reads no
    /// more until replies come back (pipelining cannot make a session's queue grow without end).
    static let maxPipelined = 100

    private var pending = CircularBuffer<PendingReply>(initialCapacity: 8)
    /// A line that must wait until every outstanding reply has come (AUTH behind others).
    var held: SMTPLine?
    /// A MAIL or RCPT waiting for the guard's word on the sending limits.
    var sendingCheck: (line: SMTPLine, kind: PendingReply)?

    var isEmpty: Bool { self.pending.isEmpty }
    var first: PendingReply? { self.pending.first }

    /// A line waits here: nothing more is read from the client until it is taken up.
    var holdsLine: Bool { self.held != nil || self.sendingCheck != nil }

    /// Another command may be read: the queue is not full, and its last command is not DATA
    /// or QUIT (nothing is read behind them until they are answered).
    var takesMoreCommands: Bool {
        if let last = self.pending.last, last == .data || last == .quit { return false }
        return self.pending.count < Self.maxPipelined
    }

    /// A command went (or waits to go) to the backend; true when nothing was owed before it.
    mutating func expect(_ kind: PendingReply) -> Bool {
        let wasEmpty = self.pending.isEmpty
        self.pending.append(kind)
        return wasEmpty
    }

    /// A reply of the guard's own: the reply to send now, or nil when it must wait its turn.
    mutating func local(_ reply: SMTPReply) -> SMTPReply? {
        if self.pending.isEmpty { return reply }
        self.pending.append(.local(reply))
        return nil
    }

    /// What the backend's reply that just came answers (nil: no command; the caller ends the session).
    mutating func answered() -> PendingReply? {
        self.pending.popFirst()
    }

    /// The guard's own replies that are due now (they were waiting behind the one just answered).
    mutating func takeDueReplies() -> [SMTPReply] {
        var due: [SMTPReply] = []
        while case .local(let reply)? = self.pending.first {
            self.pending.removeFirst()
            due.append(reply)
        }
        return due
    }

    /// How long the backend has for the reply at the head (the end of DATA gets its own).
    func replyTimeout(_ configuration: SessionConfiguration) -> Duration {
        self.pending.first == .dataEnd ? configuration.dataTimeout : configuration.replyTimeout
    }

    /// Nothing more is owed or held (the session ends, or the backend session was dropped).
    mutating func clear() {
        self.pending.removeAll()
        self.held = nil
    }

    /// Forgets what the backend owes (its session is gone); held lines stay.
    mutating func dropOwed() {
        self.pending.removeAll()
    }
}
