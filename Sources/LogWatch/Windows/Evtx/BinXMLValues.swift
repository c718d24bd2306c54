// The typed values of binary XML (substitution values and value tokens) as text, the way
// python-evtx 0.8.1 writes them (Evtx/Nodes.py, the `string()` of each *TypeNode), so that a
// record reads the same here as there:
//
//   wstring, ansi string   the text, trailing NULs removed (ansi as Windows-1252)
//   int8 … uint64, size_t  decimal (size_t: 4 bytes when the value has 4, else 8)
//   real32, real64         Python's repr of the (widened) double: "0.5", "1e-05", "1e+16"
//   bool                   "True" when the int32 is > 0, else "False"
//   binary                 base64
//   GUID                   "{54849625-5478-4994-a5ba-3e3b0328c30d}"
//   FILETIME               "2020-09-09T13:18:23.627951Z": the instant python-evtx prints as
//                          "2020-09-09 13:18:23.627951+00:00", microseconds rounded as it rounds
//                          them, written the Windows way (T, Z, always six digits)
//   SYSTEMTIME             "2020-09-09T13:18:23.627000Z" (python-evtx puts the milliseconds in
//                          the microseconds' place; here they are milliseconds)
//   SID                    "S-1-5-21-…"
//   hex32, hex64           "0x%08x", "0x%016x"
//   wstring array          "<string>a</string>\n" for each string, as python-evtx writes it
//   other arrays           the values as above, joined by "," (python-evtx cannot read them)

import GuardCore

/// A substitution value, decoded.
enum SubstitutionValue {
    case null
    case text(String)
    /// Binary XML in a value (type 0x21): the elements and text it holds.
    case content([EventContent])
}

/// Little-endian loads without alignment; callers check bounds first.
extension UnsafeRawBufferPointer {
    @inline(__always) func le16(_ offset: Int) -> UInt16 { self.loadUnaligned(fromByteOffset: offset, as: UInt16.self).littleEndian }
    @inline(__always) func le32(_ offset: Int) -> UInt32 { self.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian }
    @inline(__always) func le64(_ offset: Int) -> UInt64 { self.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian }
}

enum BinXMLValues {
    // MARK: - Strings

    /// UTF-16LE code units at `offset` (bounds checked by the caller), trailing NULs removed
    /// when `trimNULs`. ASCII (nearly every name and value in a Security log) is copied byte by
    /// byte into the string; anything else is decoded, unpaired surrogates as U+FFFD.
    static func utf16(_ raw: UnsafeRawBufferPointer, _ offset: Int, units: Int, trimNULs: Bool) -> String {
        var count = units
        if trimNULs {
            while count > 0, raw.le16(offset + 2 * (count - 1)) == 0 { count -= 1 }
        }
        if count == 0 { return "" }
        var ascii = true
        for i in 0..<count where raw.le16(offset + 2 * i) >= 0x80 {
            ascii = false
            break
        }
        if ascii {
            return String(unsafeUninitializedCapacity: count) { buffer in
                for i in 0..<count { buffer[i] = UInt8(truncatingIfNeeded: raw.le16(offset + 2 * i)) }
                return count
            }
        }
        return withUnsafeTemporaryAllocation(of: UInt16.self, capacity: count) { buffer in
            for i in 0..<count { buffer[i] = raw.le16(offset + 2 * i) }
            return String(decoding: UnsafeBufferPointer(buffer), as: UTF16.self)
        }
    }

    /// An ANSI string (Windows-1252), trailing NULs removed.
    static func ansi(_ raw: UnsafeRawBufferPointer, _ offset: Int, count: Int) -> String {
        var end = count
        while end > 0, raw[offset + end - 1] == 0 { end -= 1 }
        var scalars = String.UnicodeScalarView()
        for i in 0..<end {
            let byte = raw[offset + i]
            if byte >= 0x80 && byte < 0xA0 {
                scalars.append(Unicode.Scalar(Self.windows1252[Int(byte - 0x80)]) ?? "\u{FFFD}")
            } else {
                scalars.append(Unicode.Scalar(byte))
            }
        }
        return String(scalars)
    }

    /// Windows-1252 at 0x80…0x9F (the rest is Latin-1); the five unassigned bytes as U+FFFD.
    static let windows1252: [UInt32] = [
        0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
        0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
    ]

    // MARK: - Values

    /// The fixed size of a scalar type, nil for the variable-sized ones.
    static func fixedSize(_ type: UInt8) -> Int? {
        switch type {
        case 0x03, 0x04: 1
        case 0x05, 0x06: 2
        case 0x07, 0x08, 0x0B, 0x0D, 0x14: 4
        case 0x09, 0x0A, 0x0C, 0x11, 0x15: 8
        case 0x0F, 0x12: 16
        default: nil
        }
    }

    /// One value of a type other than null, the strings and binary XML, `size` bytes at
    /// `offset` (bounds checked by the caller).
    static func render(_ raw: UnsafeRawBufferPointer, _ offset: Int, size: Int, type: UInt8) throws -> String {
        if let need = self.fixedSize(type), size < need {
            throw BinXMLError(offset, "value of type \(Hex.padded(UInt64(type), width: 2)) has \(size) bytes, needs \(need)")
        }
        switch type {
        case 0x03: return String(Int8(bitPattern: raw[offset]))
        case 0x04: return String(raw[offset])
        case 0x05: return String(Int16(bitPattern: raw.le16(offset)))
        case 0x06: return String(raw.le16(offset))
        case 0x07: return String(Int32(bitPattern: raw.le32(offset)))
        case 0x08: return String(raw.le32(offset))
        case 0x09: return String(Int64(bitPattern: raw.le64(offset)))
        case 0x0A: return String(raw.le64(offset))
        case 0x0B: return self.pythonRepr(Double(Float(bitPattern: raw.le32(offset))))
        case 0x0C: return self.pythonRepr(Double(bitPattern: raw.le64(offset)))
        case 0x0D: return Int32(bitPattern: raw.le32(offset)) > 0 ? "True" : "False"
        case 0x0E: return self.base64(raw, offset, count: size)
        case 0x0F: return self.guid(raw, offset)
        case 0x10:
            if size == 4 { return String(raw.le32(offset)) }
            guard size >= 8 else { throw BinXMLError(offset, "size_t value of \(size) bytes") }
            return String(raw.le64(offset))
        case 0x11: return self.filetime(raw.le64(offset))
        case 0x12: return self.systemtime(raw, offset)
        case 0x13: return try self.sid(raw, offset, size: size).text
        case 0x14: return Hex.padded(UInt64(raw.le32(offset)), width: 8)
        case 0x15: return Hex.padded(raw.le64(offset), width: 16)
        case 0x81: return self.stringArray(raw, offset, size: size, wide: true)
        case 0x82: return self.stringArray(raw, offset, size: size, wide: false)
        case 0x8E: return self.base64(raw, offset, count: size)
        case 0x93:
            var parts: [String] = []
            var at = offset
            while at < offset + size {
                let (text, length) = try self.sid(raw, at, size: offset + size - at)
                parts.append(text)
                at += length
            }
            return parts.joined(separator: ",")
        case 0x83...0x95 where type != 0x90:
            let scalar = type & 0x7F
            guard let element = self.fixedSize(scalar) else { break }
            var parts: [String] = []
            parts.reserveCapacity(size / element)
            var at = offset
            while at + element <= offset + size {
                parts.append(try self.render(raw, at, size: element, type: scalar))
                at += element
            }
            return parts.joined(separator: ",")
        case 0x90:
            let element = size % 8 == 0 ? 8 : 4
            var parts: [String] = []
            var at = offset
            while at + element <= offset + size {
                parts.append(try self.render(raw, at, size: element, type: 0x10))
                at += element
            }
            return parts.joined(separator: ",")
        default: break
        }
        throw BinXMLError(offset, "unknown value type \(Hex.padded(UInt64(type), width: 2))")
    }

    // MARK: - Formats

    /// "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" in lower case: the first three groups little-endian.
    static func guid(_ raw: UnsafeRawBufferPointer, _ offset: Int) -> String {
        let order = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15]
        var out = [UInt8]()
        out.reserveCapacity(38)
        out.append(UInt8(ascii: "{"))
        for index in order {
            if index < 0 {
                out.append(UInt8(ascii: "-"))
            } else {
                let byte = raw[offset + index]
                out.append(Hex.digits[Int(byte >> 4)])
                out.append(Hex.digits[Int(byte & 0xF)])
            }
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// "S-1-5-21-…" and its length in bytes.
    static func sid(_ raw: UnsafeRawBufferPointer, _ offset: Int, size: Int) throws -> (text: String, length: Int) {
        guard size >= 8 else { throw BinXMLError(offset, "SID of \(size) bytes") }
        let revision = raw[offset]
        let count = Int(raw[offset + 1])
        let length = 8 + 4 * count
        guard length <= size else { throw BinXMLError(offset, "SID with \(count) parts in \(size) bytes") }
        var authority: UInt64 = 0
        for i in 0..<6 { authority = authority << 8 | UInt64(raw[offset + 2 + i]) }
        var text = "S-\(revision)-\(authority)"
        for i in 0..<count {
            text += "-"
            text += String(raw.le32(offset + 8 + 4 * i))
        }
        return (text, length)
    }

    /// A FILETIME (100 ns since 1601) as python-evtx computes it: `float(t) * 1e-7 - 11644473600`
    /// seconds, to microseconds rounded half to even (datetime.fromtimestamp); written
    /// "2020-09-09T13:18:23.627951Z".
    static func filetime(_ value: UInt64) -> String {
        let seconds = Double(value) * 1e-7 - 11_644_473_600.0
        var whole = seconds.rounded(.towardZero)
        var micro = ((seconds - whole) * 1e6).rounded(.toNearestOrEven)
        if micro >= 1e6 {
            micro -= 1e6
            whole += 1
        } else if micro < 0 {
            micro += 1e6
            whole -= 1
        }
        return self.iso8601(seconds: Int64(whole), micro: Int(micro))
    }

    /// A SYSTEMTIME (year, month, weekday, day, hour, minute, second, milliseconds).
    static func systemtime(_ raw: UnsafeRawBufferPointer, _ offset: Int) -> String {
        var out = [UInt8]()
        out.reserveCapacity(27)
        func put(_ value: UInt16, _ width: Int) {
            var digits = [UInt8](repeating: UInt8(ascii: "0"), count: width)
            var v = Int(value)
            var i = width - 1
            while i >= 0 {
                digits[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                i -= 1
            }
            if v > 0 { out += Array(String(value).utf8) } else { out += digits }
        }
        put(raw.le16(offset), 4)
        out.append(UInt8(ascii: "-"))
        put(raw.le16(offset + 2), 2)
        out.append(UInt8(ascii: "-"))
        put(raw.le16(offset + 6), 2)
        out.append(UInt8(ascii: "T"))
        put(raw.le16(offset + 8), 2)
        out.append(UInt8(ascii: ":"))
        put(raw.le16(offset + 10), 2)
        out.append(UInt8(ascii: ":"))
        put(raw.le16(offset + 12), 2)
        out.append(UInt8(ascii: "."))
        put(raw.le16(offset + 14), 3)
        out += Array("000Z".utf8)
        return String(decoding: out, as: UTF8.self)
    }

    /// "YYYY-MM-DDTHH:MM:SS.ffffffZ" for seconds since 1970 (any year, proleptic Gregorian).
    static func iso8601(seconds: Int64, micro: Int) -> String {
        var days = seconds / 86_400
        var rem = seconds % 86_400
        if rem < 0 {
            rem += 86_400
            days -= 1
        }
        let (year, month, day) = Timestamp.civil(days: days)
        var out = [UInt8](repeating: UInt8(ascii: "0"), count: 27)
        func put(_ value: Int64, at end: Int, width: Int) {
            var v = value
            for i in stride(from: end - 1, through: end - width, by: -1) {
                out[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
        }
        put(month, at: 7, width: 2)
        out[4] = UInt8(ascii: "-")
        out[7] = UInt8(ascii: "-")
        put(day, at: 10, width: 2)
        out[10] = UInt8(ascii: "T")
        put(rem / 3600, at: 13, width: 2)
        out[13] = UInt8(ascii: ":")
        put(rem / 60 % 60, at: 16, width: 2)
        out[16] = UInt8(ascii: ":")
        put(rem % 60, at: 19, width: 2)
        out[19] = UInt8(ascii: ".")
        put(Int64(micro), at: 26, width: 6)
        out[26] = UInt8(ascii: "Z")
        if (0...9999).contains(year) {
            put(year, at: 4, width: 4)
            return String(decoding: out, as: UTF8.self)
        }
        return String(year) + String(decoding: out[4...], as: UTF8.self)
    }

    static func base64(_ raw: UnsafeRawBufferPointer, _ offset: Int, count: Int) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out = [UInt8]()
        out.reserveCapacity((count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= count {
            let n = UInt32(raw[offset + i]) << 16 | UInt32(raw[offset + i + 1]) << 8 | UInt32(raw[offset + i + 2])
            out += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            i += 3
        }
        if count - i == 1 {
            let n = UInt32(raw[offset + i]) << 16
            out += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if count - i == 2 {
            let n = UInt32(raw[offset + i]) << 16 | UInt32(raw[offset + i + 1]) << 8
            out += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// NUL-terminated strings, each as "<string>…</string>\n" (python-evtx's WstringArrayTypeNode).
    static func stringArray(_ raw: UnsafeRawBufferPointer, _ offset: Int, size: Int, wide: Bool) -> String {
        var out = ""
        let width = wide ? 2 : 1
        let count = size / width
        var start = 0
        func emit(_ from: Int, _ to: Int) {
            out += "<string>"
            out += wide ? self.utf16(raw, offset + 2 * from, units: to - from, trimNULs: false) : self.ansi(raw, offset + from, count: to - from)
            out += "</string>\n"
        }
        for i in 0..<count {
            let unit = wide ? raw.le16(offset + 2 * i) : UInt16(raw[offset + i])
            if unit == 0 {
                emit(start, i)
                start = i + 1
            }
        }
        if start < count { emit(start, count) }
        return out
    }

    /// Python's `repr(float)`: the shortest digits that read back, in positional notation when
    /// the decimal exponent is in -4 ..< 16, else as "1e+16", "1.5e-07".
    static func pythonRepr(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description also gives the shortest round-trip digits; only the layout differs.
        let text = Array(value.magnitude.description.utf8)
        var mantissa = text[...]
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            mantissa = text[..<e]
            exponent = Int(String(decoding: text[(e + 1)...], as: UTF8.self)) ?? 0
        }
        var digits: [UInt8] = []
        var point = mantissa.count
        for (i, byte) in mantissa.enumerated() {
            if byte == UInt8(ascii: ".") { point = i } else { digits.append(byte) }
        }
        var decimalPoint = point + exponent
        while digits.first == UInt8(ascii: "0") {
            digits.removeFirst()
            decimalPoint -= 1
        }
        while digits.last == UInt8(ascii: "0") { digits.removeLast() }
        if digits.isEmpty { return value.sign == .minus ? "-0.0" : "0.0" }
        var out: [UInt8] = value.sign == .minus ? [UInt8(ascii: "-")] : []
        if decimalPoint > 16 || decimalPoint < -3 {
            out.append(digits[0])
            if digits.count > 1 {
                out.append(UInt8(ascii: "."))
                out += digits[1...]
            }
            let e = decimalPoint - 1
            out += Array((e < 0 ? "e-" : "e+").utf8)
            let magnitude = String(abs(e))
            if magnitude.count < 2 { out.append(UInt8(ascii: "0")) }
            out += Array(magnitude.utf8)
        } else if decimalPoint <= 0 {
            out += Array("0.".utf8)
            out += [UInt8](repeating: UInt8(ascii: "0"), count: -decimalPoint)
            out += digits
        } else if decimalPoint >= digits.count {
            out += digits
            out += [UInt8](repeating: UInt8(ascii: "0"), count: decimalPoint - digits.count)
            out += Array(".0".utf8)
        } else {
            out += digits[..<decimalPoint]
            out.append(UInt8(ascii: "."))
            out += digits[decimalPoint...]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension WindowsTime {
    /// "2020-09-09T13:18:23.627951Z": UTC with microseconds, as `smtpguard windows dump` writes
    /// times (and WindowsTime.parse reads them).
    public static func iso8601(_ time: Timestamp) -> String {
        var seconds = time.nanoseconds / 1_000_000_000
        var nanoseconds = time.nanoseconds % 1_000_000_000
        if nanoseconds < 0 {
            nanoseconds += 1_000_000_000
            seconds -= 1
        }
        return BinXMLValues.iso8601(seconds: seconds, micro: Int(nanoseconds / 1000))
    }
}
