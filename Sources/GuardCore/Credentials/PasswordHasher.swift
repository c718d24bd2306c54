// The guard's keyed, truncated password hash: Dovecot's `pwhash` (DovecotPasswordHash) with
// at most 16 bits kept, as a number. Few bits on purpose: enough to tell "the same password
// retried" from "a new guess", far too few to recover or verify a password. The nonce is a
// secret.

public struct PasswordHasher: Sendable {
    private let pwhash: DovecotPasswordHash
    public var bits: Int { self.pwhash.bits }

    /// - Parameters:
    ///   - nonce: the secret. Never logged; an empty nonce is allowed only in tests.
    ///   - bits: how many leading bits to keep, 1...16 (Dovecot's default is 12).
    public init(nonce: [UInt8], bits: Int = 12) {
        self.pwhash = DovecotPasswordHash(nonce: nonce, bits: min(max(bits, 1), 16))
    }

    /// A hasher with a fresh random nonce, for a process that does not share hashes.
    public static func random(bits: Int = 12) -> PasswordHasher {
        var generator = SystemRandomNumberGenerator()
        let nonce = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return PasswordHasher(nonce: nonce, bits: bits)
    }

    public func hash(login: some Sequence<UInt8>, password: some Sequence<UInt8>) -> UInt16 {
        // One or two bytes, the kept bits right-aligned.
        self.pwhash.hash(login: login, password: password).reduce(0) { $0 << 8 | UInt16($1) }
    }

    /// Dovecot's text form: the kept bits as lower-case hex, as many digits as they need.
    public func hex(_ value: UInt16) -> String {
        let digits = (self.bits + 3) / 4
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
