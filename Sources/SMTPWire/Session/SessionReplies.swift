// SessionReplies: every reply of the guard's own that an SMTP client can see, in one place,
// so that the texts can be read and audited together. (EHLO's capability list is built by
// EHLOEditor, LOGIN's two prompts are SASL's; the backend's own replies are relayed as
// they come, except where a case below replaces them.)
//
// The texts follow Postfix's where Postfix has one (clients and their authors know them);
// the enhanced status codes are RFC 3463's. Built once per proxy, shared by its sessions.

import GuardCore

public struct SessionReplies: Sendable {
    // MARK: - Connect and greeting

    /// The guard's greeting (`smtp.banner`): the backend is not connected for it.
    public let greeting: SMTPReply
    /// Refused at connect: the guard holds its maximum of connections.
    public let tooManyConnections: SMTPReply
    /// Refused at connect: this client (IPv6: its prefix) holds its maximum.
    public let tooManyConnectionsFromClient: SMTPReply
    /// Refused at connect, banned, with `proxy.ban_reply_code` 421 (come back later) or 554.
    public let bannedTemporary: SMTPReply
    public let bannedPermanent: SMTPReply

    // MARK: - Ending the session

    public let idleTimeout: SMTPReply
    public let dataTooSlow: SMTPReply
    public let sessionTooLong: SMTPReply
    public let tooManyErrors: SMTPReply
    public let tooManyJunkCommands: SMTPReply
    /// The client is banned (now, by its last failure) or the session was cut.
    public let serviceNotAvailable: SMTPReply
    /// The backend failed (down, refused, did not answer).
    public let backendUnavailable: SMTPReply
    /// The backend sent a reply to no command.
    public let backendProtocolError: SMTPReply
    public let bye: SMTPReply

    // MARK: - Attacks on the framing (SMTP smuggling, STARTTLS injection)

    public let tlsWithoutSTARTTLS: SMTPReply
    public let bareNewline: SMTPReply
    public let pipelinedAfterSTARTTLS: SMTPReply
    public let dataBeforeAccepted: SMTPReply
    public let nulInData: SMTPReply
    public let dataLineTooLong: SMTPReply
    public let messageTooLarge: SMTPReply

    // MARK: - Commands

    public let lineTooLong = SMTPReply(code: 500, "5.5.6 Error: line too long")
    public let badSyntax = SMTPReply(code: 500, "5.5.2 Error: bad syntax")
    public let helloFirst = SMTPReply(code: 503, "5.5.1 Error: send HELO/EHLO first")
    public let ehloSyntax = SMTPReply(code: 501, "5.5.4 Syntax: EHLO hostname")
    public let heloSyntax = SMTPReply(code: 501, "5.5.4 Syntax: HELO hostname")
    /// HELO answered by the guard (the backend's answer, when relayed, keeps its own code).
    public let helo: SMTPReply
    public let ok = SMTPReply(code: 250, "2.0.0 Ok")
    public let needMail = SMTPReply(code: 503, "5.5.1 Error: need MAIL command")
    public let needRcpt = SMTPReply(code: 503, "5.5.1 Error: need RCPT command")
    public let help = SMTPReply(code: 214, "2.0.0 Commands: EHLO HELO AUTH STARTTLS MAIL RCPT DATA RSET NOOP QUIT")
    public let notBeforeMail = SMTPReply(code: 502, "5.5.1 Error: command not available before MAIL")
    public let notRecognized = SMTPReply(code: 502, "5.5.2 Error: command not recognized")
    public let bdatUnsupported = SMTPReply(code: 502, "5.5.1 Error: BDAT is not supported here")
    public let insufficientAuthorization = SMTPReply(code: 550, "5.7.0 Error: insufficient authorization")
    public let alreadyAuthenticated = SMTPReply(code: 503, "5.5.1 Error: already authenticated")
    public let inTransaction = SMTPReply(code: 503, "5.5.1 Error: MAIL transaction in progress")
    public let startData = SMTPReply(code: 354, "End data with <CR><LF>.<CR><LF>")

    // MARK: - STARTTLS

    public let notImplemented = SMTPReply(code: 502, "5.5.1 Error: command not implemented")
    public let tlsAlreadyActive = SMTPReply(code: 554, "5.5.1 Error: TLS already active")
    public let startTLSSyntax = SMTPReply(code: 501, "5.5.4 Syntax: STARTTLS")
    public let readyToStartTLS = SMTPReply(code: 220, "2.0.0 Ready to start TLS")

    // MARK: - AUTH

    public let encryptionRequired = SMTPReply(code: 538, "5.7.11 Encryption required for requested authentication mechanism")
    public let authNotEnabled = SMTPReply(code: 503, "5.5.1 Error: authentication not enabled")
    public let authSyntax = SMTPReply(code: 501, "5.5.4 Syntax: AUTH mechanism")
    public let unrecognizedMechanism = SMTPReply(code: 504, "5.5.4 Unrecognized authentication type")
    public let cramInitialResponse = SMTPReply(code: 501, "5.5.2 Error: CRAM-MD5 takes no initial response")
    public let authLineTooLong = SMTPReply(code: 500, "5.5.6 Error: authentication line too long")
    public let authAborted = SMTPReply(code: 501, "5.7.0 Authentication aborted")
    public let authMalformed = SMTPReply(code: 501, "5.5.2 Error: malformed authentication data")
    /// PLAIN's prompt for its response (an empty 334).
    public let plainPrompt = SMTPReply(code: 334, "")
    public let loginUsernamePrompt = SMTPReply(code: 334, SASL.loginUsernamePrompt)
    public let loginPasswordPrompt = SMTPReply(code: 334, SASL.loginPasswordPrompt)
    public let authSucceeded = SMTPReply(code: 235, "2.7.0 Authentication successful")
    /// A failed attempt, whatever failed (`proxy.failure_reply`): the same text for a wrong
    /// password, a refusal by the guard and a default password the backend accepted.
    public let authFailed: SMTPReply
    /// A temporary failure (`proxy.temp_failure_reply`): the backend could not check, or the
    /// guard cannot tell.
    public let authTempFailed: SMTPReply

    private let hostname: String

    public init(hostname: String, banner: String, failure: SMTPReply, tempFailure: SMTPReply, maxDataLine: Int, maxMessageSize: Int) {
        self.hostname = hostname
        self.greeting = SMTPReply(code: 220, banner)
        self.tooManyConnections = SMTPReply(code: 421, "4.7.0 \(hostname) Error: too many connections, try again later")
        self.tooManyConnectionsFromClient = SMTPReply(code: 421, "4.7.0 \(hostname) Error: too many connections from your address")
        self.bannedTemporary = SMTPReply(code: 421, "4.7.0 \(hostname) Service not available, try again later")
        self.bannedPermanent = SMTPReply(code: 554, "5.7.1 \(hostname) Access denied")
        self.idleTimeout = SMTPReply(code: 421, "4.4.2 \(hostname) Error: timeout exceeded")
        self.dataTooSlow = SMTPReply(code: 421, "4.4.2 \(hostname) Error: message data too slow, closing")
        self.sessionTooLong = SMTPReply(code: 421, "4.4.2 \(hostname) Error: session too long, closing")
        self.tooManyErrors = SMTPReply(code: 421, "4.7.0 \(hostname) Error: too many errors")
        self.tooManyJunkCommands = SMTPReply(code: 421, "4.7.0 \(hostname) Error: too many commands that send no mail")
        self.serviceNotAvailable = SMTPReply(code: 421, "4.7.0 \(hostname) Service not available, closing transmission channel")
        self.backendUnavailable = SMTPReply(code: 421, "4.3.0 \(hostname) Service temporarily unavailable, try again later")
        self.backendProtocolError = SMTPReply(code: 421, "4.3.0 \(hostname) Service not available, closing transmission channel")
        self.bye = SMTPReply(code: 221, "2.0.0 Bye")
        self.tlsWithoutSTARTTLS = SMTPReply(code: 554, "5.5.1 \(hostname) Error: TLS handshake on a plain SMTP port; send STARTTLS first")
        self.bareNewline = SMTPReply(code: 521, "5.5.2 \(hostname) Error: bare <CR> or <LF> received")
        self.pipelinedAfterSTARTTLS = SMTPReply(code: 554, "5.5.1 \(hostname) Error: command pipelined after STARTTLS, closing")
        self.dataBeforeAccepted = SMTPReply(code: 554, "5.5.1 \(hostname) Error: message sent before DATA was accepted, closing")
        self.nulInData = SMTPReply(code: 554, "5.6.0 \(hostname) Error: NUL byte in message data")
        self.dataLineTooLong = SMTPReply(code: 554, "5.6.0 \(hostname) Error: message line longer than \(maxDataLine) bytes")
        self.messageTooLarge = SMTPReply(code: 552, "5.3.4 \(hostname) Error: message larger than \(maxMessageSize) bytes")
        self.helo = SMTPReply(code: 250, hostname)
        self.authFailed = failure
        self.authTempFailed = tempFailure
    }

    /// The backend's positive answer to the client's HELO, with the guard's name in it.
    public func helo(code: Int) -> SMTPReply { SMTPReply(code: code, self.hostname) }

    /// The backend refused the client's EHLO or HELO said again at link-up, after the guard
    /// had answered it 250: the session cannot go on.
    public func sessionRefused(backendCode code: Int) -> SMTPReply {
        code >= 500
            ? SMTPReply(code: 554, "5.7.0 \(self.hostname) Error: the mail server refused this session, closing")
            : SMTPReply(code: 421, "4.3.0 \(self.hostname) Error: the mail server refused this session, closing")
    }

    /// A MAIL (or a locked account's command) over a sending limit: 451; a recipient: 452.
    public func sendingRefused(_ text: String, recipient: Bool) -> SMTPReply {
        recipient ? SMTPReply(code: 452, "4.5.3 \(text)") : SMTPReply(code: 451, "4.7.1 \(text)")
    }
}
