// What the session machine asks its handler to do, and the timers it runs. The handler
// carries these out in order and answers some of them with an event (noted at each case);
// it decides nothing itself.

import GuardCore
import NIOCore

public enum SessionTimer: Hashable, Sendable, CaseIterable {
    case backendConnect
    case backendReply
    case clientIdle
    case tarpit
    /// The client's TLS handshake (after STARTTLS, or at connect on an implicit TLS port).
    case tlsHandshake
    /// The periodic check of the client's rate during DATA.
    case dataRate
    /// The whole session's lifetime.
    case session
}

public enum SessionLogLevel: Sendable, Equatable {
    case info, warning, error, critical
}

public enum SessionAction: Equatable, Sendable {
    case connectBackend
    case sendToBackend(ByteBuffer)
    case sendToClient(SMTPReply)
    /// Ask the engine about an attempt; the handler stamps the time and answers with
    /// `verdictReceived`.
    indirect case decide(AuthAttempt)
    /// Tell the engine how an attempt ended, when the session needs no answer (an attempt
    /// abandoned or cut short). The handler stamps the time and answers nothing.
    indirect case report(AuthAttempt)
    /// An attempt allowed before its tarpit is about to go to the backend: ask the engine
    /// whether a ban came meanwhile; the handler answers with `confirmationReceived`.
    indirect case confirm(AuthAttempt)
    /// The last credential line of an AUTH went to the backend (the handler notes the time).
    case authCredentialsSent
    /// The backend answered those credentials with this code (the handler measures the wait).
    case backendAuthAnswered(code: Int)
    /// One AUTH attempt is settled: write it to the event log.
    indirect case recordAttempt(AuthAttempt, replyCode: Int, decision: Decision)
    /// Ask the guard whether the authenticated user may send this (answer with
    /// `sendingVerdictReceived`); the time is filled in by the handler.
    case checkSending(SendingRequest)
    case startTimer(SessionTimer, Duration)
    case cancelTimer(SessionTimer)
    /// Put TLS on the client connection now (server side). Everything written before this
    /// action goes out in plain text; the handler must hold no client bytes (the machine has
    /// made sure none were waiting).
    case startTLS
    /// Put TLS on the backend connection now (client side), after its 220 to STARTTLS.
    case startBackendTLS
    case closeBackend
    /// Close the client once what was sent to it is flushed.
    case closeClient
    /// Close the client now: nothing more can be said to it (it is mid TLS handshake).
    case dropClient
    /// The session ends because of the backend (it is down, refused, broke the protocol or
    /// did not answer): log it as an error and count it.
    case backendFailed(String)
    case log(SessionLogLevel, String)
}
