// Postfix's SMTPD access policy protocol (SMTPD_POLICY_README): a request is `name=value`
// lines ended by an empty line; the answer is `action=…` and an empty line; the connection
// carries more requests. This is the pure part: lines in, requests out, with a size cap.

/// One request's attributes. Unknown names are kept and ignored.
public struct PostfixPolicyRequest: Sendable, Equatable {
    public var attributes: [String: String]

    public init(_ attributes: [String: String]) { self.attributes = attributes }

    public subscript(_ name: String) -> String? { self.attributes[name] }

    /// `protocol_state`, upper-cased ("RCPT", "END-OF-MESSAGE" …).
    public var state: String { (self.attributes["protocol_state"] ?? "").uppercased() }
}

public struct PostfixPolicyError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { self.message }
}

public struct PostfixPolicyDecoder {
    public let maxRequestSize: Int
    private var attributes: [String: String] = [:]
    private var size = 0

    public init(maxRequestSize: Int) { self.maxRequestSize = maxRequestSize }

    /// True while a request has begun and not ended.
    public var isMidRequest: Bool { self.size > 0 }

    /// Takes one line without its LF (a CR before it is dropped); returns a request at the
    /// empty line that ends it.
    public mutating func line(_ bytes: some BidirectionalCollection<UInt8>) throws(PostfixPolicyError) -> PostfixPolicyRequest? {
        var count = bytes.count
        if bytes.last == UInt8(ascii: "\r") { count -= 1 }
        self.size += count + 1
        guard self.size <= self.maxRequestSize else {
            throw PostfixPolicyError("request over \(self.maxRequestSize) bytes")
        }
        if count == 0 {
            defer {
                self.attributes = [:]
                self.size = 0
            }
            guard !self.attributes.isEmpty else { throw PostfixPolicyError("empty request") }
            guard let request = self.attributes["request"] else { throw PostfixPolicyError("request without request=") }
            guard request == "smtpd_access_policy" else {
                throw PostfixPolicyError("unknown request=\(request.logSafeText) (only smtpd_access_policy)")
            }
            return PostfixPolicyRequest(self.attributes)
        }
        let text = bytes.prefix(count)
        guard let equals = text.firstIndex(of: UInt8(ascii: "=")), equals != text.startIndex else {
            throw PostfixPolicyError("a line that is not name=value")
        }
        guard let name = String(validating: text[..<equals], as: UTF8.self) else { throw PostfixPolicyError("an attribute name that is not UTF-8") }
        // Values come from clients (HELO names, addresses): kept as they are, escaped when logged.
        let value = String(decoding: text[text.index(after: equals)...], as: UTF8.self)
        self.attributes[name] = value
        return nil
    }
}

extension String {
    /// For error texts: at most 64 printable ASCII characters.
    var logSafeText: String {
        String(self.unicodeScalars.prefix(64).map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" })
    }
}
