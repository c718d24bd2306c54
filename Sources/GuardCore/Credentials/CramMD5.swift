// Recognising a CRAM-MD5 response (RFC 2195) made with a default password: the client sends
// HMAC-MD5(password, challenge); the guard computes it for each default candidate and
// compares. MD5 and HMAC are swift-crypto's (pure, no I/O).

import Crypto

extension DefaultCredentials {
    /// True when a CRAM-MD5 response was made with a default password: the digest equals
    /// HMAC-MD5(candidate, challenge) for one of the candidates (the usual case variants of
    /// the username-derived ones included; others cannot be compared without case).
    public static func isDefaultCramMD5(username: String, challenge: [UInt8], digestHex: String) -> Bool {
        let wanted = digestHex.lowercased()
        for candidate in self.candidates(for: username) {
            let digest = HMAC<Insecure.MD5>.authenticationCode(for: challenge, using: SymmetricKey(data: Array(candidate.utf8)))
            if Hex.string(Array(digest)) == wanted { return true }
        }
        return false
    }
}
