// Event XML as Windows writes it: `wevtutil qe Security /f:xml` (one <Event> after another, no
// root, often all on one line), Event Viewer's "Save as XML" (an <?xml?> declaration and an
// <Events> root), NXLog's to_xml() (an event per line). Fed in pieces of any size, it hands
// over each complete <Event> as a tree; what lies between events (the declaration, the root,
// white space, comments) is skipped. A malformed event is reported with its byte offset and
// skipped; the events after it are still read.

public struct EventXMLReader: Sendable {
    /// Bytes not yet handed over: from the start of an unfinished event (or a possible one).
    private var pending: [UInt8] = []
    /// The offset in the whole input of `pending[0]`.
    private var pendingOffset = 0
    public private(set) var bytesRead = 0
    public private(set) var events = 0
    public private(set) var malformed: [EventXMLError] = []
    /// An event larger than this is reported and dropped (Security events are a few KiB).
    public var maxEventBytes = 1 << 20

    public init() {}

    static let open = Array("<Event".utf8)
    static let close = Array("</Event>".utf8)

    /// Hands over every event completed by `bytes`.
    public mutating func feed(_ bytes: some Collection<UInt8>, event: (EventNode) -> Void) {
        self.pending.append(contentsOf: bytes)
        self.bytesRead += bytes.count
        var start = 0
        let view = self.pending[...]
        while true {
            guard let open = Self.findEventStart(view, from: start) else {
                // Keep a tail that may be the beginning of "<Event".
                start = max(start, view.endIndex - Self.open.count)
                break
            }
            guard let close = view.find(Self.close, from: open) else {
                start = open
                if view.endIndex - open > self.maxEventBytes {
                    self.malformed.append(EventXMLError(offset: self.pendingOffset + open, reason: "an <Event> longer than \(self.maxEventBytes) bytes without its </Event>"))
                    start = view.endIndex
                }
                break
            }
            let end = close + Self.close.count
            do {
                var parser = XMLElementParser(bytes: view[open..<end])
                let node = try parser.element()
                self.events += 1
                event(node)
            } catch {
                self.malformed.append(EventXMLError(offset: self.pendingOffset + open + error.offset, reason: error.reason))
            }
            start = end
        }
        if start > 0 {
            self.pending.removeFirst(min(start, self.pending.count))
            self.pendingOffset += start
        }
    }

    /// True when an event has begun and not ended.
    public var isInsideEvent: Bool { Self.findEventStart(self.pending[...], from: 0) != nil }

    /// At the end of input: an event left open is reported.
    public mutating func finish() {
        let view = self.pending[...]
        if let open = Self.findEventStart(view, from: 0) {
            self.malformed.append(EventXMLError(offset: self.pendingOffset + open, reason: "the input ends inside an <Event> (no </Event>)"))
        }
        self.pending = []
    }

    /// "<Event" followed by white space, ">" or "/" (not "<Events>", not "<EventData>").
    static func findEventStart(_ view: ArraySlice<UInt8>, from: Int) -> Int? {
        var from = from
        while let at = view.find(Self.open, from: from) {
            let next = at + Self.open.count
            guard next < view.endIndex else { return at }  // can't tell yet: keep it
            switch view[next] {
            case 0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: ">"), UInt8(ascii: "/"): return at
            default: from = at + 1
            }
        }
        return nil
    }
}

public struct EventXMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: String
    public var description: String { "malformed event at byte \(self.offset): \(self.reason)" }
}

struct XMLSyntaxError: Error {
    var offset: Int
    var reason: String
}

/// A recursive-descent reader of one XML element (with its children) from bytes: elements,
/// attributes in either quote, text with the five entities and character references, CDATA;
/// comments and processing instructions inside are skipped. White space between child elements
/// is dropped; an element's own text is kept as it is.
struct XMLElementParser {
    let bytes: ArraySlice<UInt8>
    var i: Int
    var depth = 0

    init(bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.i = bytes.startIndex
    }

    func fail(_ reason: String) -> XMLSyntaxError { XMLSyntaxError(offset: self.i - self.bytes.startIndex, reason: reason) }

    var atEnd: Bool { self.i >= self.bytes.endIndex }
    var current: UInt8 { self.bytes[self.i] }

    mutating func skipSpace() {
        while !self.atEnd, self.current == 0x20 || self.current == 0x09 || self.current == 0x0A || self.current == 0x0D { self.i += 1 }
    }

    mutating func name() throws(XMLSyntaxError) -> String {
        let start = self.i
        while !self.atEnd {
            let b = self.current
            if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == UInt8(ascii: ">") || b == UInt8(ascii: "/") || b == UInt8(ascii: "=") || b == UInt8(ascii: "<") { break }
            self.i += 1
        }
        guard self.i > start else { throw self.fail("a name was expected") }
        return String(decoding: self.bytes[start..<self.i], as: UTF8.self)
    }

    mutating func element() throws(XMLSyntaxError) -> EventNode {
        guard !self.atEnd, self.current == UInt8(ascii: "<") else { throw self.fail("\"<\" was expected") }
        self.depth += 1
        guard self.depth <= 64 else { throw self.fail("elements nested more than 64 deep") }
        defer { self.depth -= 1 }
        self.i += 1
        var node = EventNode(name: try self.name())
        while true {
            self.skipSpace()
            guard !self.atEnd else { throw self.fail("the start tag of <\(node.name)> is not closed") }
            if self.current == UInt8(ascii: "/") {
                self.i += 1
                guard !self.atEnd, self.current == UInt8(ascii: ">") else { throw self.fail("\"/>\" was expected") }
                self.i += 1
                return node
            }
            if self.current == UInt8(ascii: ">") {
                self.i += 1
                break
            }
            let attribute = try self.name()
            self.skipSpace()
            guard !self.atEnd, self.current == UInt8(ascii: "=") else { throw self.fail("\"=\" was expected after the attribute \(attribute)") }
            self.i += 1
            self.skipSpace()
            guard !self.atEnd, self.current == UInt8(ascii: "\"") || self.current == UInt8(ascii: "'") else { throw self.fail("a quoted value was expected for the attribute \(attribute)") }
            let quote = self.current
            self.i += 1
            let value = try self.characters(until: quote)
            self.i += 1
            node.attributes.append(EventAttribute(name: attribute, value: value))
        }
        // Content.
        var text = ""
        var hasElements = false
        func flushText(into node: inout EventNode) {
            if !text.isEmpty { node.children.append(.text(text)) }
            text = ""
        }
        while true {
            guard !self.atEnd else { throw self.fail("<\(node.name)> is not closed") }
            if self.current != UInt8(ascii: "<") {
                text += try self.characters(until: UInt8(ascii: "<"))
                continue
            }
            if self.bytes.hasPrefix(Array("</".utf8), at: self.i) {
                self.i += 2
                let closing = try self.name()
                guard closing == node.name else { throw self.fail("</\(closing)> closes <\(node.name)>") }
                self.skipSpace()
                guard !self.atEnd, self.current == UInt8(ascii: ">") else { throw self.fail("\">\" was expected after </\(closing)") }
                self.i += 1
                flushText(into: &node)
                if hasElements {
                    // White space between child elements is layout, not content.
                    node.children.removeAll { if case .text(let t) = $0 { t.utf8.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D } } else { false } }
                }
                return node
            }
            if self.bytes.hasPrefix(Array("<!--".utf8), at: self.i) {
                guard let end = self.bytes.find(Array("-->".utf8), from: self.i + 4) else { throw self.fail("a comment is not closed") }
                self.i = end + 3
                continue
            }
            if self.bytes.hasPrefix(Array("<![CDATA[".utf8), at: self.i) {
                guard let end = self.bytes.find(Array("]]>".utf8), from: self.i + 9) else { throw self.fail("a CDATA section is not closed") }
                text += String(decoding: self.bytes[(self.i + 9)..<end], as: UTF8.self)
                self.i = end + 3
                continue
            }
            if self.bytes.hasPrefix(Array("<?".utf8), at: self.i) {
                guard let end = self.bytes.find(Array("?>".utf8), from: self.i + 2) else { throw self.fail("a processing instruction is not closed") }
                self.i = end + 2
                continue
            }
            flushText(into: &node)
            let child = try self.element()
            hasElements = true
            node.children.append(.element(child))
        }
    }

    /// Characters up to (not including) `stop`, with entities and character references resolved.
    mutating func characters(until stop: UInt8) throws(XMLSyntaxError) -> String {
        let start = self.i
        var plain = true
        while !self.atEnd, self.current != stop {
            if self.current == UInt8(ascii: "&") { plain = false }
            if stop != UInt8(ascii: "<"), self.current == UInt8(ascii: "<") { throw self.fail("\"<\" in an attribute value") }
            self.i += 1
        }
        guard !self.atEnd || stop == UInt8(ascii: "<") else { throw self.fail("an attribute value is not closed") }
        let raw = self.bytes[start..<self.i]
        if plain { return String(decoding: raw, as: UTF8.self) }
        var out = [UInt8]()
        out.reserveCapacity(raw.count)
        var k = raw.startIndex
        while k < raw.endIndex {
            guard raw[k] == UInt8(ascii: "&") else {
                out.append(raw[k])
                k += 1
                continue
            }
            guard let semicolon = raw[k...].prefix(12).firstIndex(of: UInt8(ascii: ";")) else {
                throw XMLSyntaxError(offset: k - self.bytes.startIndex, reason: "\"&\" without an entity")
            }
            let entity = String(decoding: raw[(k + 1)..<semicolon], as: UTF8.self)
            switch entity {
            case "lt": out.append(UInt8(ascii: "<"))
            case "gt": out.append(UInt8(ascii: ">"))
            case "amp": out.append(UInt8(ascii: "&"))
            case "quot": out.append(UInt8(ascii: "\""))
            case "apos": out.append(UInt8(ascii: "'"))
            default:
                var value: UInt32?
                if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                    value = UInt32(entity.dropFirst(2), radix: 16)
                } else if entity.hasPrefix("#") {
                    value = UInt32(entity.dropFirst(1))
                }
                guard let value, let scalar = Unicode.Scalar(value) else {
                    throw XMLSyntaxError(offset: k - self.bytes.startIndex, reason: "unknown entity &\(entity);")
                }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            }
            k = semicolon + 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
