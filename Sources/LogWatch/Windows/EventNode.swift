// One Windows event as an XML tree, whichever form it came in: an .evtx record's binary XML
// (Evtx/), Event XML text (EventXML/), or the fields of forwarded JSON. Extraction into
// `WindowsEvent` and the XML `smtpguard windows dump` prints both work on this tree.

/// An element: a name, attributes in document order, and children (elements or text).
public struct EventNode: Sendable, Equatable {
    public var name: String
    public var attributes: [EventAttribute]
    public var children: [EventContent]

    public init(name: String, attributes: [EventAttribute] = [], children: [EventContent] = []) {
        self.name = name
        self.attributes = attributes
        self.children = children
    }

    /// The first child element of that name.
    public func child(_ name: String) -> EventNode? {
        for case .element(let node) in self.children where node.name == name { return node }
        return nil
    }

    /// The child elements.
    public var elements: [EventNode] {
        self.children.compactMap { if case .element(let node) = $0 { node } else { nil } }
    }

    public func attribute(_ name: String) -> String? {
        self.attributes.first(where: { $0.name == name })?.value
    }

    /// The element's text: its text children joined (child elements left out).
    public var text: String {
        var out = ""
        for case .text(let text) in self.children { out += text }
        return out
    }
}

public struct EventAttribute: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

public enum EventContent: Sendable, Equatable {
    case element(EventNode)
    case text(String)
}

extension EventNode {
    /// The element as XML text: attributes in double quotes, text and attribute values escaped,
    /// an empty element written as a pair of tags (as python-evtx and wevtutil write them); line
    /// ends written as character references, so that the XML is one line.
    public var xml: String {
        var out = ""
        self.write(to: &out)
        return out
    }

    func write(to out: inout String) {
        out += "<"
        out += self.name
        for attribute in self.attributes {
            out += " "
            out += attribute.name
            out += "=\""
            Self.escape(attribute.value, attribute: true, to: &out)
            out += "\""
        }
        out += ">"
        for child in self.children {
            switch child {
            case .element(let node): node.write(to: &out)
            case .text(let text): Self.escape(text, attribute: false, to: &out)
            }
        }
        out += "</"
        out += self.name
        out += ">"
    }

    static func escape(_ text: String, attribute: Bool, to out: inout String) {
        var plain = true
        for byte in text.utf8 where byte == UInt8(ascii: "<") || byte == UInt8(ascii: ">") || byte == UInt8(ascii: "&") || (attribute && byte == UInt8(ascii: "\"")) || byte < 0x20 {
            plain = false
            break
        }
        if plain {
            out += text
            return
        }
        for scalar in text.unicodeScalars {
            switch scalar {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"" where attribute: out += "&quot;"
            // Line ends as references in text too: one record is one line of `windows dump`.
            case "\n", "\r": out += "&#\(scalar.value);"
            case "\t": if attribute { out += "&#9;" } else { out.unicodeScalars.append(scalar) }
            default:
                if scalar.value < 0x20 { out += "&#\(scalar.value);" } else { out.unicodeScalars.append(scalar) }
            }
        }
    }
}
