// Recognises the mail server product, and its version, that a greeting or EHLO reply
// reveals. A version tells an attacker which known holes to try; a product name alone says
// less, but still more than a mail server needs to say.

public struct ProductBanner: Sendable, Equatable {
    public var product: String
    public var version: String?

    /// Products by a word or phrase that names them (compared without case).
    static let products: [(name: String, markers: [String])] = [
        ("Microsoft Exchange", ["microsoft esmtp mail service", "microsoft exchange", "exchange server"]),
        ("Postfix", ["postfix"]),
        ("Exim", ["exim"]),
        ("Sendmail", ["sendmail"]),
        ("qmail", ["qmail"]),
        ("OpenSMTPD", ["opensmtpd"]),
        ("MDaemon", ["mdaemon"]),
        ("hMailServer", ["hmailserver"]),
        ("Kerio Connect", ["kerio connect", "kerio mailserver"]),
        ("IceWarp", ["icewarp", "merak"]),
        ("Zimbra", ["zimbra"]),
        ("Haraka", ["haraka"]),
        ("Courier", ["courier"]),
        ("HCL/Lotus Domino", ["domino"]),
        ("CommuniGate Pro", ["communigate"]),
        ("SmarterMail", ["smartermail"]),
        ("MailEnable", ["mailenable"]),
        ("Axigen", ["axigen"]),
        ("IMail", ["imail"]),
        ("Dovecot", ["dovecot"]),
        ("SMTPGuard", ["smtpguard"]),
    ]

    /// What `text` (a greeting or the first EHLO line, both "domain text…") reveals, or nil.
    /// The first word is the server's own name and is not read: mail.postfix.example is no leak.
    public static func recognise(_ text: String) -> ProductBanner? {
        let words = text.split(separator: " ", maxSplits: 1)
        guard words.count == 2 else { return nil }
        let lowered = words[1].lowercased()
        for (name, markers) in self.products {
            for marker in markers {
                guard let range = lowered.range(of: marker), Self.isWordBoundary(lowered, range) else { continue }
                return ProductBanner(product: name, version: self.version(in: lowered))
            }
        }
        return nil
    }

    private static func isWordBoundary(_ text: String, _ range: Range<String.Index>) -> Bool {
        let before = range.lowerBound == text.startIndex ? nil : text[text.index(before: range.lowerBound)]
        let after = range.upperBound == text.endIndex ? nil : text[range.upperBound]
        func letter(_ c: Character?) -> Bool { c.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" } ?? false }
        return !letter(before) && !letter(after)
    }

    /// A version number: digits with at least one dot (4.96, 8.15.2/8.15.2, 10.0.17763.1697),
    /// not part of an address (127.0.0.1 has three dots and only digits, so the greeting's own
    /// address in brackets is skipped) and not a date or time.
    static func version(in text: String) -> String? {
        var candidates: [String] = []
        var current = ""
        for character in text + " " {
            if character.isASCII && (character.isNumber || character == ".") {
                current.append(character)
            } else {
                if current.contains("."), current.first?.isNumber == true, current.last?.isNumber == true { candidates.append(current) }
                current = ""
            }
        }
        return candidates.first { candidate in
            let parts = candidate.split(separator: ".")
            let isIPv4 = parts.count == 4 && parts.allSatisfy { $0.count <= 3 && (Int($0) ?? 256) < 256 } && !text.contains("version")
            return !isIPv4 && parts.count >= 2
        }
    }
}
