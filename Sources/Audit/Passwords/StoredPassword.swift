// A stored password as a Dovecot passwd-file or a shadow file holds it, and whether a candidate
// matches it. Dovecot writes `{SCHEME}data` (`{SCHEME.HEX}` / `{SCHEME.B64}` for another
// encoding); a shadow file, and a passwd-file line without a scheme, hold a crypt(3) string.
//
//   {SHA512-CRYPT} {SHA256-CRYPT} {BLF-CRYPT} {MD5-CRYPT} {MD5} {DES-CRYPT} {CRYPT}, and
//   shadow's $y$ (yescrypt) …          crypt(3) through libcrypt
//   {SSHA256} {SSHA512}                 SHA-2 of password + salt, then the salt (base64)
//   {SHA256} {SHA512}                   SHA-2 of the password
//   {PLAIN} {CLEAR} {CLEARTEXT}         the password itself

import Crypto
import Foundation
import GuardCore
import SMTPWire

public enum StoredPassword: Sendable, Equatable {
    case crypt(String)
    case sha256(digest: [UInt8], salt: [UInt8])
    case sha512(digest: [UInt8], salt: [UInt8])
    case plain([UInt8])

    /// The scheme's name as an administrator reads it in the file: SHA512-CRYPT, SSHA256, PLAIN …
    public var schemeName: String {
        switch self {
        case .crypt(let setting): Self.cryptSchemeName(setting)
        case .sha256(_, let salt): salt.isEmpty ? "SHA256" : "SSHA256"
        case .sha512(_, let salt): salt.isEmpty ? "SHA512" : "SSHA512"
        case .plain: "PLAIN"
        }
    }

    static func cryptSchemeName(_ setting: String) -> String {
        if setting.hasPrefix("$6$") { return "SHA512-CRYPT" }
        if setting.hasPrefix("$5$") { return "SHA256-CRYPT" }
        if setting.hasPrefix("$2y$") || setting.hasPrefix("$2b$") || setting.hasPrefix("$2a$") { return "BLF-CRYPT" }
        if setting.hasPrefix("$1$") { return "MD5-CRYPT" }
        if setting.hasPrefix("$y$") { return "YESCRYPT" }
        if setting.hasPrefix("$gy$") { return "GOST-YESCRYPT" }
        if setting.hasPrefix("$7$") { return "SCRYPT" }
        if setting.count == 13 && !setting.hasPrefix("$") { return "DES-CRYPT" }
        return "CRYPT"
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case unsupportedScheme(String)
        case malformed(scheme: String, why: String)

        public var description: String {
            switch self {
            case .unsupportedScheme(let name): "the scheme {\(name)} is not one the audit can check"
            case .malformed(let scheme, let why): "malformed {\(scheme)} value: \(why)"
            }
        }
    }

    /// Parses a password field. `defaultScheme` is what a value without `{…}` is (Dovecot's
    /// passwd-file default is CRYPT).
    public static func parse(_ field: String, defaultScheme: String = "CRYPT") throws(ParseError) -> StoredPassword {
        var scheme = defaultScheme.uppercased()
        var data = Substring(field)
        if field.hasPrefix("{"), let close = field.firstIndex(of: "}") {
            scheme = field[field.index(after: field.startIndex)..<close].uppercased()
            data = field[field.index(after: close)...]
        }
        var encoding: String? = nil
        if let dot = scheme.lastIndex(of: ".") {
            encoding = String(scheme[scheme.index(after: dot)...])
            scheme = String(scheme[..<dot])
        }
        switch scheme {
        case "CRYPT", "DES-CRYPT", "MD5-CRYPT", "MD5", "SHA256-CRYPT", "SHA512-CRYPT", "BLF-CRYPT":
            guard !data.isEmpty, data.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
                throw .malformed(scheme: scheme, why: "not a crypt(3) string")
            }
            if scheme == "MD5", !data.hasPrefix("$1$") { throw .unsupportedScheme("MD5 (without $1$)") }
            return .crypt(String(data))
        case "PLAIN", "CLEAR", "CLEARTEXT":
            return .plain(try decode(data, encoding: encoding ?? "", scheme: scheme))
        case "SHA256", "SSHA256", "SHA512", "SSHA512":
            let bytes = try decode(data, encoding: encoding ?? "B64", scheme: scheme)
            let size = scheme.hasSuffix("256") ? 32 : 64
            let salted = scheme.hasPrefix("SS")
            guard salted ? bytes.count > size : bytes.count == size else {
                throw .malformed(scheme: scheme, why: "\(bytes.count) bytes, \(salted ? "more than" : "exactly") \(size) expected")
            }
            let digest = Array(bytes.prefix(size)), salt = Array(bytes.dropFirst(size))
            return size == 32 ? .sha256(digest: digest, salt: salt) : .sha512(digest: digest, salt: salt)
        default:
            throw .unsupportedScheme(scheme + (encoding.map { "." + $0 } ?? ""))
        }
    }

    private static func decode(_ data: Substring, encoding: String, scheme: String) throws(ParseError) -> [UInt8] {
        switch encoding {
        case "":
            return Array(data.utf8)
        case "B64", "BASE64":
            guard let decoded = Base64.decode(data) else { throw .malformed(scheme: scheme, why: "not base64") }
            return decoded
        case "HEX":
            guard data.utf8.count % 2 == 0, let decoded = Hex.bytes(String(data), maxDigits: 4096) else {
                throw .malformed(scheme: scheme, why: "not hexadecimal")
            }
            return decoded
        default:
            throw .unsupportedScheme(scheme + "." + encoding)
        }
    }

    /// True when `candidate` is the stored password. `crypt` is the worker's own buffer.
    func matches(_ candidate: String, crypt: CryptBuffer) -> Bool {
        switch self {
        case .crypt(let setting):
            guard !candidate.utf8.contains(0), let hashed = crypt.crypt(candidate, setting: setting) else { return false }
            return constantTimeEqual(Array(hashed.utf8), Array(setting.utf8))
        case .sha256(let digest, let salt):
            return constantTimeEqual(Array(SHA256.hash(data: Array(candidate.utf8) + salt)), digest)
        case .sha512(let digest, let salt):
            return constantTimeEqual(Array(SHA512.hash(data: Array(candidate.utf8) + salt)), digest)
        case .plain(let stored):
            return constantTimeEqual(Array(candidate.utf8), stored)
        }
    }
}
