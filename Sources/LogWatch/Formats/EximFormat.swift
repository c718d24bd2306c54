// Exim 4 main log (the whole line is the message; Exim writes its own file):
//   2026-11-23 02:03:14 login authenticator failed for (kali) [192.0.2.1]:56789: 535 Incorrect authentication data (set_id=admin)
//   2026-11-23 02:03:14 [1234] dovecot_plain authenticator failed for H=mail.example (kali) [2001:db8::1]:40000 I=[10.0.0.1]:587: 535 Incorrect authentication data (set_id=bob)
// The client's HELO name is free text in parentheses to the left: the address is taken from the
// last "[…]" of the host part, after removing the local "I=[…]:port", so a HELO cannot move it.

import GuardCore

public struct EximFormat: LogFormat {
    public let name = "exim"
    public let rules = ["authenticator_failed"]
    public init() {}

    static let failedFor = Array(" authenticator failed for ".utf8)
    static let incorrect = Array(": 535 Incorrect authentication data".utf8)
    static let setID = Array("(set_id=".utf8)
    static let local = Array(" I=[".utf8)

    public func match(line message: ArraySlice<UInt8>, message _: ArraySlice<UInt8>, program _: ArraySlice<UInt8>) -> LogMatch? {
        guard let start = message.find(Self.failedFor) else { return looksLikeAuthFailure(message) ? .suspect : nil }
        guard let end = message.find(Self.incorrect, from: start) else { return .suspect }
        var host = message[(start + Self.failedFor.count)..<end]
        if let localAt = host.findLast(Self.local) { host = host[..<localAt] }
        // "... [ADDR]:PORT" or "... [ADDR]"
        guard let close = host.lastIndex(of: UInt8(ascii: "]")), let open = host[..<close].lastIndex(of: UInt8(ascii: "[")),
            let address = IPAddress(host[(open + 1)..<close].text)
        else { return .suspect }
        var username = ""
        if let at = message.find(Self.setID, from: end), let closing = message.lastIndex(of: UInt8(ascii: ")")), closing > at + Self.setID.count - 1 {
            username = message[(at + Self.setID.count)..<closing].text
        }
        return .attempt(rule: "authenticator_failed", client: address, username: username, outcome: .failure, count: 1)
    }
}
