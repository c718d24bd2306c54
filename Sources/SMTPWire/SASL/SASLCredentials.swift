// Decoding the SASL mechanisms the guard understands: PLAIN (RFC 4616), LOGIN (the
// de-facto "Username:" / "Password:" exchange) and CRAM-MD5 (RFC 2195, username only: the
// password never crosses the wire). The password, where one is decoded, is held only long
// enough to derive CredentialEvidence; it is never logged or stored.

import GuardCore

public enum SASLError: Error, Equatable, Sendable {
    /// Not base64, or not the mechanism's format.
    case malformed
}

/// A decoded username and password, kept for the moment the evidence is derived.
public struct SASLPlainCredentials: Sendable {
    public var authorizationID: String
    public var username: String
    /// The password bytes. Never put this in a log, an event or an error.
    public var password: [UInt8]

    /// Derives the evidence the engine may see.
    public func evidence(hasher: PasswordHasher) -> CredentialEvidence {
        let password = String(decoding: self.password, as: UTF8.self)
        return CredentialEvidence(
            passwordHash: hasher.hash(login: Array(self.username.utf8), password: self.password),
            isDefaultPassword: DefaultCredentials.isDefaultPassword(password, username: self.username))
    }
}

public enum SASL {
    /// SASL field limit: RFC 4616 servers must accept 255 octets per field; more is refused.
    public static let maxFieldLength = 255

    /// The initial response or client response as sent: `=` stands for an empty response.
    public static func decodeResponse(_ text: String) -> [UInt8]? {
        if text == "=" { return [] }
        if text.isEmpty { return [] }
        return Base64.decode(text)
    }

    /// PLAIN: `[authzid] NUL authcid NUL passwd`.
    public static func parsePlain(_ bytes: [UInt8]) throws(SASLError) -> SASLPlainCredentials {
        let parts = bytes.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[1].isEmpty else { throw .malformed }
        for part in parts {
            guard part.count <= self.maxFieldLength, !part.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                throw .malformed
            }
        }
        return SASLPlainCredentials(
            authorizationID: String(decoding: parts[0], as: UTF8.self),
            username: String(decoding: parts[1], as: UTF8.self),
            password: Array(parts[2]))
    }

    /// LOGIN's username or password field.
    public static func parseLoginField(_ bytes: [UInt8]) throws(SASLError) -> [UInt8] {
        guard bytes.count <= self.maxFieldLength, !bytes.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
            throw .malformed
        }
        return bytes
    }

    /// CRAM-MD5's response: `username SP hex-digest` (32 hex digits).
    public static func parseCramMD5(_ bytes: [UInt8]) throws(SASLError) -> (username: String, digest: String) {
        guard let space = bytes.lastIndex(of: UInt8(ascii: " ")), space > 0 else { throw .malformed }
        let digest = bytes[(space + 1)...]
        guard digest.count == 32, digest.allSatisfy({ IPAddressHex.isHex($0) }) else { throw .malformed }
        let name = bytes[..<space]
        guard name.count <= self.maxFieldLength, !name.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { throw .malformed }
        return (String(decoding: name, as: UTF8.self), String(decoding: digest, as: UTF8.self))
    }

    public static let loginUsernamePrompt = "VXNlcm5hbWU6"  // "Username:"
    public static let loginPasswordPrompt = "UGFzc3dvcmQ6"  // "Password:"
}

enum IPAddressHex {
    static func isHex(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "F"))
    }
}
