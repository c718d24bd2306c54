import Testing

@testable import GuardCore

@Suite("Credentials")
struct CredentialTests {
    func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test("SHA-256 matches the NIST vectors")
    func sha256() {
        #expect(hex(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            hex(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(hex(SHA256.hash([UInt8](repeating: 0x61, count: 1000))) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

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

    @Test("MD5 and HMAC-MD5 match RFC 1321, RFC 2104 and RFC 2195")
    func vectors() {
        #expect(hex(MD5.hash([])) == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(hex(MD5.hash(Array("abc".utf8))) == "900150983cd24fb0d6963f7d28e17f72")
        #expect(hex(MD5.hash(Array("12345678901234567890123456789012345678901234567890123456789012345678901234567890".utf8))) == "57edf4a22be3c955ac49da2e2107b67a")
        #expect(hex(MD5.hmac(key: [UInt8](repeating: 0x0b, count: 16), message: Array("Hi There".utf8))) == "9294727a3638bb1c13f48ef8158bfc9d")
        #expect(hex(MD5.hmac(key: Array("tanstaaftanstaaf".utf8), message: Array("<1896.697170952@postoffice.reston.mci.net>".utf8))) == "b913a602c7eda7a495b4e6e7334d3890")
    }

    @Test("a CRAM-MD5 response made with a default password is recognised, a real one is not")
    func recognition() {
        let challenge = Array("<1896.697170952@postoffice.reston.mci.net>".utf8)
        #expect(DefaultCredentials.isDefaultCramMD5(username: "admin", challenge: challenge, digestHex: "31fd5fce0a7c98fe66c8f2329a85fb10"))
        #expect(DefaultCredentials.isDefaultCramMD5(username: "bob", challenge: challenge, digestHex: "A844A8EAA3CA9E04FCAD809E8297080C"))
        #expect(!DefaultCredentials.isDefaultCramMD5(username: "tim", challenge: challenge, digestHex: "b913a602c7eda7a495b4e6e7334d3890"))
    }
}
