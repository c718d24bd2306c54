// Hexadecimal digits: IPv6 words, CRAM-MD5 digests, Dovecot's pwhash, JSON's \u escapes.

public enum Hex {
    /// The value of one hex digit (either case), or nil.
    @inline(__always)
    public static func value(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The bytes a hex string spells (an odd count of digits has a leading 0 implied); nil
    /// for anything else, or past `maxDigits`.
    public static func bytes(_ text: String, maxDigits: Int = 128) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count <= maxDigits else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((digits.count + 1) / 2)
        var i = digits.count % 2 == 1 ? -1 : 0
        while i < digits.count {
            guard let high = i < 0 ? 0 : Self.value(digits[i]), let low = Self.value(digits[i + 1]) else { return nil }
            bytes.append(high << 4 | low)
            i += 2
        }
        return bytes
    }

    /// Lower-case hex, two digits a byte.
    public static func string(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
