// Dovecot's auth-policy password hash, `pwhash`: SHA-256(nonce ‖ login ‖ NUL ‖ password), of
// which only the top `bits` bits are kept (Dovecot's buffer_truncate_rshift_bits). The one
// implementation of the scheme: the guard's own keyed hash (PasswordHasher) and the Dovecot
// policy endpoint's check of the hashes Dovecot sends are both built on it. Pure; the nonce
// is a secret and is never logged.

import Crypto

public struct DovecotPasswordHash: Sendable {
    private let nonce: [UInt8]
    /// Bits kept; 0 keeps the whole digest.
    public let bits: Int

    public init(nonce: [UInt8], bits: Int) {
        self.nonce = nonce
        self.bits = bits
    }

    public init(nonce: String, bits: Int) {
        self.init(nonce: Array(nonce.utf8), bits: bits)
    }

    /// The top `bits` bits of the digest, as a big-endian number in as few bytes as hold it.
    public func hash(login: some Sequence<UInt8>, password: some Sequence<UInt8>) -> [UInt8] {
        var sha = SHA256()
        sha.update(data: self.nonce)
        sha.update(data: Array(login))
        sha.update(data: [0])
        sha.update(data: Array(password))
        let digest = Array(sha.finalize())
        guard self.bits > 0, self.bits < digest.count * 8 else { return digest }
        let count = (self.bits + 7) / 8
        let shift = count * 8 - self.bits
        var out = Array(digest[0..<count])
        if shift > 0 {
            var carry: UInt8 = 0
            for i in 0..<count {
                let byte = out[i]
                out[i] = (byte >> UInt8(shift)) | carry
                carry = byte << UInt8(8 - shift)
            }
        }
        return out
    }

    public func hash(login: String, password: String) -> [UInt8] {
        self.hash(login: login.utf8, password: password.utf8)
    }

    /// The default passwords bots try for `login`, as hashes.
    public func defaultHashes(login: String) -> Set<[UInt8]> {
        Set(DefaultCredentials.candidates(for: login).map { self.hash(login: login, password: $0) })
    }
}
