// A JSON reader for the one shape Dovecot sends: a single object whose values are strings,
// booleans, numbers or null. Nested objects and arrays are checked and passed as `.other`, so
// an unexpected attribute is skipped rather than refused. Anything that is not JSON gets an
// error that says where. Values stay ranges of the body until asked for: a request costs
// a scan and the few strings the guard uses.

import GuardCore

struct JSONError: Error, Equatable, CustomStringConvertible {
    var message: String
    var offset: Int
    var description: String { "\(self.message) at byte \(self.offset)" }
}

struct FlatJSON {
    /// A member's value, not yet copied out of the body.
    enum Raw {
        case string(Range<Int>, escaped: Bool)
        case bool(Bool)
        case number(Double)
        case null
        case other

        var typeName: String {
            switch self {
            case .string: return "a string"
            case .bool: return "a boolean"
            case .number: return "a number"
            case .null: return "null"
            case .other: return "an object or array"
            }
        }
    }

    private let bytes: [UInt8]
    private var index = 0
    /// Nesting allowed inside skipped values.
    private static let maxDepth = 32

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The members of the top-level object: each name as the range of its raw bytes (names
    /// with escapes are not unescaped: they match no attribute Dovecot sends) and its value.
    /// The whole body is checked to be one JSON object: a malformed body is an error
    /// whatever its members.
    static func members(_ bytes: [UInt8]) throws(JSONError) -> [(name: Range<Int>, value: Raw)] {
        var reader = FlatJSON(bytes)
        var found: [(name: Range<Int>, value: Raw)] = []
        found.reserveCapacity(12)
        reader.skipSpace()
        guard reader.peek() == UInt8(ascii: "{") else { throw reader.error("expected a JSON object") }
        reader.index += 1
        reader.skipSpace()
        if reader.peek() == UInt8(ascii: "}") {
            reader.index += 1
        } else {
            while true {
                reader.skipSpace()
                guard reader.peek() == UInt8(ascii: "\"") else { throw reader.error("expected a member name in quotes") }
                let (name, _) = try reader.scanString()
                reader.skipSpace()
                guard reader.peek() == UInt8(ascii: ":") else { throw reader.error("expected : after a member name") }
                reader.index += 1
                found.append((name, try reader.value(depth: 0)))
                reader.skipSpace()
                let separator = reader.peek()
                reader.index += 1
                if separator == UInt8(ascii: "}") { break }
                guard separator == UInt8(ascii: ",") else {
                    reader.index -= 1
                    throw reader.error("expected , or } after a member")
                }
            }
        }
        reader.skipSpace()
        guard reader.index == reader.bytes.count else { throw reader.error("unexpected data after the object") }
        return found
    }

    /// The text of a string value.
    static func text(_ bytes: [UInt8], _ range: Range<Int>, escaped: Bool) throws(JSONError) -> String {
        if !escaped {
            guard let text = String(validating: bytes[range], as: UTF8.self) else { throw JSONError(message: "invalid UTF-8 in a string", offset: range.lowerBound) }
            return text
        }
        var reader = FlatJSON(bytes)
        reader.index = range.lowerBound - 1
        return try reader.string()
    }

    private func peek() -> UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

    private func error(_ message: String) -> JSONError { JSONError(message: message, offset: self.index) }

    private mutating func skipSpace() {
        while let byte = self.peek(), byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { self.index += 1 }
    }

    private mutating func value(depth: Int) throws(JSONError) -> Raw {
        self.skipSpace()
        guard let byte = self.peek() else { throw self.error("expected a value") }
        switch byte {
        case UInt8(ascii: "\""):
            let (range, escaped) = try self.scanString()
            return .string(range, escaped: escaped)
        case UInt8(ascii: "t"): try self.literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try self.literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try self.literal("null"); return .null
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            try self.skipContainer(depth: depth + 1)
            return .other
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try self.number())
        default: throw self.error("unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONError) {
        let count = word.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { throw self.error("unexpected end") }
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: count)
        for i in 0..<count where self.bytes[self.index + i] != expected[i] { throw self.error("unexpected word") }
        self.index += count
    }

    private mutating func number() throws(JSONError) -> Double {
        let start = self.index
        if self.peek() == UInt8(ascii: "-") { self.index += 1 }
        while let byte = self.peek(), (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e")
            || byte == UInt8(ascii: "E") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
        {
            self.index += 1
        }
        guard let value = Double(String(decoding: self.bytes[start..<self.index], as: UTF8.self)) else {
            self.index = start
            throw self.error("malformed number")
        }
        return value
    }

    /// Steps over a string: the range of its contents, and whether it has escapes (those
    /// are checked here, decoded when the text is asked for).
    private mutating func scanString() throws(JSONError) -> (Range<Int>, Bool) {
        let start = self.index + 1
        var probe = self
        probe.index += 1
        while let byte = probe.peek() {
            if byte == UInt8(ascii: "\"") {
                self.index = probe.index + 1
                return (start..<probe.index, false)
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw probe.error("control character in a string") }
            probe.index += 1
        }
        _ = try self.string()
        return (start..<(self.index - 1), true)
    }

    private mutating func string() throws(JSONError) -> String {
        self.index += 1  // the opening quote
        var scalars: [UInt8] = []
        let start = self.index
        // The common case: no escapes, one copy.
        while let byte = self.peek() {
            if byte == UInt8(ascii: "\"") {
                defer { self.index += 1 }
                return try self.decodeUTF8(self.bytes[start..<self.index])
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw self.error("control character in a string") }
            self.index += 1
        }
        scalars.append(contentsOf: self.bytes[start..<self.index])
        while let byte = self.peek() {
            self.index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return try self.decodeUTF8(scalars[...])
            case UInt8(ascii: "\\"):
                guard let escape = self.peek() else { throw self.error("unexpected end in a string") }
                self.index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(escape)
                case UInt8(ascii: "b"): scalars.append(0x08)
                case UInt8(ascii: "f"): scalars.append(0x0C)
                case UInt8(ascii: "n"): scalars.append(0x0A)
                case UInt8(ascii: "r"): scalars.append(0x0D)
                case UInt8(ascii: "t"): scalars.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try self.hex4()
                    if (0xD800...0xDBFF).contains(code) {
                        guard self.peek() == UInt8(ascii: "\\"), self.index + 1 < self.bytes.count, self.bytes[self.index + 1] == UInt8(ascii: "u") else {
                            throw self.error("lone surrogate in a string")
                        }
                        self.index += 2
                        let low = try self.hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw self.error("bad surrogate pair in a string") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(code) {
                        throw self.error("lone surrogate in a string")
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw self.error("bad \\u escape") }
                    scalars.append(contentsOf: Array(String(Character(scalar)).utf8))
                default:
                    throw self.error("bad escape \\\(Character(Unicode.Scalar(escape)))")
                }
            default:
                if byte < 0x20 { throw self.error("control character in a string") }
                scalars.append(byte)
            }
        }
        throw self.error("unterminated string")
    }

    private func decodeUTF8(_ bytes: ArraySlice<UInt8>) throws(JSONError) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw self.error("invalid UTF-8 in a string") }
        return text
    }

    private mutating func hex4() throws(JSONError) -> UInt32 {
        guard self.index + 4 <= self.bytes.count else { throw self.error("short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = Hex.value(self.bytes[self.index]) else { throw self.error("bad \\u escape") }
            value = value << 4 | UInt32(digit)
            self.index += 1
        }
        return value
    }

    private mutating func skipContainer(depth: Int) throws(JSONError) {
        guard depth <= Self.maxDepth else { throw self.error("nested too deeply") }
        let close = self.peek() == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
        let isObject = close == UInt8(ascii: "}")
        self.index += 1
        self.skipSpace()
        if self.peek() == close {
            self.index += 1
            return
        }
        while true {
            if isObject {
                self.skipSpace()
                guard self.peek() == UInt8(ascii: "\"") else { throw self.error("expected a member name in quotes") }
                _ = try self.scanString()
                self.skipSpace()
                guard self.peek() == UInt8(ascii: ":") else { throw self.error("expected :") }
                self.index += 1
            }
            _ = try self.value(depth: depth)
            self.skipSpace()
            guard let byte = self.peek() else { throw self.error("unexpected end") }
            self.index += 1
            if byte == close { return }
            guard byte == UInt8(ascii: ",") else { throw self.error("expected , or a closing bracket") }
        }
    }
}
