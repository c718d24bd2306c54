import Testing

@testable import GuardCore

@Suite("Credentials")
struct CredentialTests {
    func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test("the password hash is Dovecot's: SHA-256(nonce, login, NUL, password), top 12 bits")
    func dovecotHash() {
        let hasher = PasswordHasher(nonce: Array("secret-nonce".utf8), bits: 12)
        let value = hasher.hash(login: Array("alice".utf8), password: Array("wrong-password".utf8))
        #expect(hasher.hex(value) == "a55")
        #expect(value == hasher.hash(login: Array("alice".utf8), password: Array("wrong-password".utf8)))
        #expect(value != hasher.hash(login: Array("alice".utf8), password: Array("wrong-passwore".utf8)))
        // Another nonce, another hash: the value means nothing without the secret.
        let other = PasswordHasher(nonce: Array("other".utf8), bits: 12)
        #expect(other.hash(login: Array("alice".utf8), password: Array("wrong-password".utf8)) == 0x2b7)
        #expect(value < 4096)
    }

    @Test("the guard's hash is Dovecot's pwhash kept to at most 16 bits: one scheme, two uses")
    func oneScheme() {
        for bits in 1...16 {
            let bytes = DovecotPasswordHash(nonce: "secret-nonce", bits: bits).hash(login: "alice", password: "wrong-password")
            let number = PasswordHasher(nonce: Array("secret-nonce".utf8), bits: bits).hash(login: Array("alice".utf8), password: Array("wrong-password".utf8))
            #expect(bytes.count == (bits + 7) / 8 && bytes.reduce(0) { $0 << 8 | UInt16($1) } == number, "\(bits) bits")
        }
        #expect(DovecotPasswordHash(nonce: "secret-nonce", bits: 0).hash(login: "alice", password: "x").count == 32)
    }

    @Test("default passwords from the seed lists, and those derived from the username")
    func defaults() {
        for password in ["", "1", "123456", "password", "!@#$%^&*", "00000000", "super", "passwd"] {
            #expect(DefaultCredentials.isDefaultPassword(password, username: "alice"), "\(password)")
        }
        #expect(DefaultCredentials.isDefaultPassword("admin", username: "admin"))
        #expect(DefaultCredentials.isDefaultPassword("guest", username: "guest"))
        #expect(DefaultCredentials.isDefaultPassword("test123", username: "test"))
        #expect(DefaultCredentials.isDefaultPassword("Alice12", username: "alice@example.com"))
        #expect(DefaultCredentials.isDefaultPassword("alice@example.com", username: "alice@example.com"))
        #expect(!DefaultCredentials.isDefaultPassword("Correct-Horse-9-Battery", username: "alice"))
        #expect(!DefaultCredentials.isDefaultPassword("alice1234", username: "alice"))
        #expect(DefaultCredentials.isDefaultUsername("Administrator"))
        #expect(DefaultCredentials.isDefaultUsername("webmaster@example.com"))
        #expect(!DefaultCredentials.isDefaultUsername("alice"))
    }
}

@Suite("CRAM-MD5 default-credential recognition")
struct CramTests {
    func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test("a CRAM-MD5 response made with a default password is recognised, a real one is not")
    func recognition() {
        let challenge = Array("<1896.697170952@postoffice.reston.mci.net>".utf8)
        #expect(DefaultCredentials.isDefaultCramMD5(username: "admin", challenge: challenge, digestHex: "31fd5fce0a7c98fe66c8f2329a85fb10"))
        #expect(DefaultCredentials.isDefaultCramMD5(username: "bob", challenge: challenge, digestHex: "A844A8EAA3CA9E04FCAD809E8297080C"))
        #expect(!DefaultCredentials.isDefaultCramMD5(username: "tim", challenge: challenge, digestHex: "b913a602c7eda7a495b4e6e7334d3890"))
    }
}
