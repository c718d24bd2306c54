// The little of the DNS wire format (RFC 1035) a blocklist lookup needs: a query for one
// name and type, and the answer section of a reply (A and TXT records), with name
// compression followed where names are skipped.

public enum DNSRecordType: UInt16, Sendable {
    case a = 1
    case txt = 16
}

public struct DNSQuery: Sendable, Equatable {
    public var id: UInt16
    public var name: String
    public var type: DNSRecordType

    public init(id: UInt16, name: String, type: DNSRecordType) {
        self.id = id
        self.name = name
        self.type = type
    }

    /// The wire form: header (recursion desired), one question, class IN.
    public var encoded: [UInt8] {
        var bytes: [UInt8] = [UInt8(self.id >> 8), UInt8(self.id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in self.name.split(separator: ".") {
            let utf8 = Array(label.utf8.prefix(63))
            bytes.append(UInt8(utf8.count))
            bytes += utf8
        }
        bytes += [0, UInt8(self.type.rawValue >> 8), UInt8(self.type.rawValue & 0xFF), 0, 1]
        return bytes
    }
}

public struct DNSResponse: Sendable, Equatable {
    public enum ParseError: Error, Equatable, Sendable {
        case tooShort
        case notAResponse
        case badName
    }

    public var id: UInt16
    /// 0 no error, 2 server failure, 3 no such name (NXDOMAIN), 5 refused …
    public var rcode: Int
    public var truncated: Bool
    /// IPv4 addresses of the A records, in order.
    public var addresses: [String] = []
    /// TXT records, each with its strings joined.
    public var texts: [String] = []

    public init(id: UInt16, rcode: Int, truncated: Bool, addresses: [String] = [], texts: [String] = []) {
        self.id = id
        self.rcode = rcode
        self.truncated = truncated
        self.addresses = addresses
        self.texts = texts
    }

    public init(parsing bytes: [UInt8]) throws(ParseError) {
        guard bytes.count >= 12 else { throw .tooShort }
        guard bytes[2] & 0x80 != 0 else { throw .notAResponse }
        self.id = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        self.truncated = bytes[2] & 0x02 != 0
        self.rcode = Int(bytes[3] & 0x0F)
        let questions = Int(bytes[4]) << 8 | Int(bytes[5])
        let answers = Int(bytes[6]) << 8 | Int(bytes[7])
        var offset = 12
        for _ in 0..<questions {
            offset = try Self.skipName(bytes, at: offset) + 4
        }
        for _ in 0..<answers {
            offset = try Self.skipName(bytes, at: offset)
            guard offset + 10 <= bytes.count else { throw .tooShort }
            let type = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
            let length = Int(bytes[offset + 8]) << 8 | Int(bytes[offset + 9])
            offset += 10
            guard offset + length <= bytes.count else { throw .tooShort }
            let data = bytes[offset..<offset + length]
            switch DNSRecordType(rawValue: type) {
            case .a where length == 4:
                self.addresses.append(data.map(String.init).joined(separator: "."))
            case .txt:
                var text = ""
                var index = data.startIndex
                while index < data.endIndex {
                    let count = Int(data[index])
                    let end = min(data.endIndex, index + 1 + count)
                    text += String(decoding: data[(index + 1)..<end], as: UTF8.self)
                    index = end
                }
                self.texts.append(text)
            default:
                break  // CNAME and others: the A or TXT records that follow are what count
            }
            offset += length
        }
    }

    /// The offset just past the name at `offset` (labels, or a compression pointer).
    static func skipName(_ bytes: [UInt8], at start: Int) throws(ParseError) -> Int {
        var offset = start
        while true {
            guard offset < bytes.count else { throw .tooShort }
            let length = Int(bytes[offset])
            if length == 0 { return offset + 1 }
            if length & 0xC0 == 0xC0 { return offset + 2 }
            guard length & 0xC0 == 0 else { throw .badName }
            offset += 1 + length
        }
    }
}
