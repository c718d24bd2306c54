// Postfix 3.x smtpd (any service name: postfix/smtpd, postfix/submission/smtpd …):
//   warning: NAME[ADDR]: SASL MECH authentication failed: REASON[, sasl_username=USER]
//   QUEUEID: client=NAME[ADDR], sasl_method=MECH, sasl_username=USER          (success)
//   lost connection after AUTH from NAME[ADDR]                                (dropped: no guess)
//   too many errors after AUTH from NAME[ADDR]                                (dropped: the guesses
//   timeout after AUTH from NAME[ADDR]                                         were logged one by one)
// The address is the one in brackets right after "warning: " (or "client=" / "from "): what
// follows, username included, cannot change it.

import GuardCore

public struct PostfixFormat: LogFormat {
    public let name = "postfix"
    public let rules = ["sasl_failed", "sasl_success", "dropped_after_auth", "auth_rate_limit"]
    public init() {}

    static let warning = Array("warning: ".utf8)
    static let saslFailed = Array("]: SASL ".utf8)
    static let authFailed = Array(" authentication failed:".utf8)
    static let usernameField = Array(", sasl_username=".utf8)
    static let client = Array("client=".utf8)
    static let rateLimit = Array("warning: Authentication rate limit exceeded: ".utf8)
    static let droppedAfterAuth = ["lost connection after AUTH from ", "too many errors after AUTH from ", "timeout after AUTH from "].map { Array($0.utf8) }
    static let smtpd = Array("smtpd".utf8)
    static let postfix = Array("postfix".utf8)
    static let from = Array(" from ".utf8)

    public func match(line: ArraySlice<UInt8>, message: ArraySlice<UInt8>, program: ArraySlice<UInt8>) -> LogMatch? {
        // Only smtpd writes these lines (postfix/smtpd, postfix/submission/smtpd, …).
        guard program.hasPrefix(Self.postfix, at: program.startIndex), program.hasSuffix(Self.smtpd) else {
            return nil
        }
        // "warning: Authentication rate limit exceeded: 6 from NAME[ADDR] for service smtp"
        // (smtpd_client_auth_rate_limit): refused by Postfix before a guess, counted as dropped.
        if message.hasPrefix(Self.rateLimit, at: message.startIndex) {
            guard let from = message.find(Self.from), let (address, _) = Self.bracketedAddress(message, from: from + 6) else { return .suspect }
            return .attempt(rule: "auth_rate_limit", client: address, username: "", outcome: .abandoned, count: 1)
        }
        if message.hasPrefix(Self.warning, at: message.startIndex) {
            let rest = message.startIndex + Self.warning.count
            if let (address, end) = Self.bracketedAddress(message, from: rest), message.hasPrefix(Self.saslFailed, at: end - 1),
                message.find(Self.authFailed, from: end) != nil
            {
                var username = ""
                if let field = message.findLast(Self.usernameField) {
                    username = message[(field + Self.usernameField.count)...].text
                }
                return .attempt(rule: "sasl_failed", client: address, username: username, outcome: .failure, count: 1)
            }
            return looksLikeAuthFailure(message) ? .suspect : nil
        }
        // A client that went away in or after AUTH: counted as dropped, not as a guess (each
        // failed guess has its own "authentication failed" line).
        for dropped in Self.droppedAfterAuth where message.hasPrefix(dropped, at: message.startIndex) {
            guard let (address, _) = Self.bracketedAddress(message, from: message.startIndex + dropped.count) else { return .suspect }
            return .attempt(rule: "dropped_after_auth", client: address, username: "", outcome: .abandoned, count: 1)
        }
        // "QUEUEID: client=NAME[ADDR], sasl_method=…, sasl_username=USER"
        if let colon = message.find([0x3A, 0x20]), message.hasPrefix(Self.client, at: colon + 2),
            let (address, end) = Self.bracketedAddress(message, from: colon + 2 + Self.client.count),
            let field = message.find(Self.usernameField, from: end)
        {
            return .attempt(rule: "sasl_success", client: address, username: message[(field + Self.usernameField.count)...].text, outcome: .success, count: 1)
        }
        return looksLikeAuthFailure(message) ? .suspect : nil
    }

    /// `NAME[ADDR]` starting at `from`: the address and the offset just past the `]`.
    static func bracketedAddress(_ message: ArraySlice<UInt8>, from: Int) -> (IPAddress, Int)? {
        var open = from
        while open < message.endIndex && message[open] != UInt8(ascii: "[") {
            if message[open] == UInt8(ascii: " ") { return nil }  // a host name has no spaces
            open += 1
        }
        guard open < message.endIndex else { return nil }
        var close = open + 1
        while close < message.endIndex && message[close] != UInt8(ascii: "]") && close - open < 48 { close += 1 }
        guard close < message.endIndex, message[close] == UInt8(ascii: "]"),
            let address = IPAddress(message[(open + 1)..<close].text)
        else { return nil }
        return (address, close + 1)
    }
}
