// Binary XML, the form each .evtx record holds its event in: a token stream whose names live
// in the chunk's string table and whose shape lives in templates, each defined once per chunk
// (inline, in the first record that uses it) and filled in by every record with an array of
// typed substitution values.
//
// Tokens (the 0x40 bit on 0x01, 0x05 … 0x09 is a "more follows" flag and changes no layout,
// except on 0x01, where it adds an attribute list size):
//   0x00 end of fragment          0x08/48 character reference (u16)
//   0x01/41 open start element    0x09/49 entity reference (name)
//   0x02 close start element      0x0a PI target (name)   0x0b PI data (u16 count, UTF-16)
//   0x03 close empty element      0x0c template instance
//   0x04 end element              0x0d normal substitution (u16 index, u8 type)
//   0x05/45 value (type, value)   0x0e optional substitution: a null value leaves out the
//   0x06/46 attribute (name)           attribute it is the value of (as Windows does)
//   0x07/47 CDATA (u16 count, UTF-16)  0x0f fragment header (3 bytes: 1, 1, 0)
//
// A name is a chunk offset to {u32 next, u16 hash, u16 count, UTF-16, u16 NUL}, written inline
// where the offset points just past itself. A template instance is {u8, u32 id, u32 offset};
// when the offset points just past it, the definition {u32 next, GUID, u32 size, fragment}
// follows inline. Then the values: u32 count, count × {u16 size, u8 type, u8 0}, the values.
//
// Everything is parsed with bounds checks against the chunk: a record that breaks a rule is
// an error for that record (skipped, reported), never a crash. Names and templates are cached
// per chunk by offset; a template is compiled once into a tree with substitution slots.

/// A template compiled: its items, with substitution slots to fill in.
final class BinXMLTemplate {
    let items: [TemplateItem]
    init(items: [TemplateItem]) { self.items = items }
}

indirect enum TemplateItem {
    case element(TemplateElement)
    case text(String)
    case substitution(index: Int, optional: Bool)
    /// A template instance already filled in (in a record, or in binary XML inside a value).
    case content([EventContent])
}

struct TemplateElement {
    var name: String
    var attributes: [TemplateAttribute]
    var children: [TemplateItem]
}

struct TemplateAttribute {
    var name: String
    var value: [TemplateItem]
}

/// The binary XML of one chunk: its bytes, and the names and templates read from them so far.
struct BinXMLParser {
    /// The chunk's bytes (64 KiB, or what is left of a chunk cut short by the end of the file).
    let raw: UnsafeRawBufferPointer
    private var names: [Int: String] = [:]
    private var templates: [Int: BinXMLTemplate] = [:]

    /// Elements inside elements, binary XML inside values: deeper than this is an error.
    static let depthLimit = 48

    init(raw: UnsafeRawBufferPointer) {
        self.raw = raw
    }

    /// The fragment at `start` ..< `end` (a record's event, or binary XML in a value), filled in.
    mutating func fragment(_ start: Int, end: Int, depth: Int = 0) throws -> [EventContent] {
        var position = start
        var items: [TemplateItem] = []
        try self.content(&position, end: end, depth: depth, inTemplate: false, closing: false, into: &items)
        if items.count == 1, case .content(let content) = items[0] { return content }
        return Self.fill(items, values: [])
    }

    // MARK: - Tokens

    @inline(__always) private func need(_ offset: Int, _ count: Int, _ end: Int, _ what: @autoclosure () -> String) throws {
        guard offset >= 0, count >= 0, offset <= end - count, end <= self.raw.count else {
            throw BinXMLError(offset, "\(what()) runs past the end of its data")
        }
    }

    /// Tokens up to the end of the fragment (or, when `closing`, to the element's end token).
    private mutating func content(
        _ p: inout Int, end: Int, depth: Int, inTemplate: Bool, closing: Bool, into items: inout [TemplateItem]
    ) throws {
        guard depth < Self.depthLimit else { throw BinXMLError(p, "binary XML nested more than \(Self.depthLimit) deep") }
        while true {
            guard p < end else {
                if closing { throw BinXMLError(p, "element not closed before the end of its data") }
                return
            }
            let token = self.raw[p]
            switch token {
            case 0x00:
                if closing { throw BinXMLError(p, "end of fragment inside an element") }
                p += 1
                return
            case 0x01, 0x41:
                items.append(.element(try self.element(&p, end: end, depth: depth + 1, inTemplate: inTemplate)))
            case 0x04:
                guard closing else { throw BinXMLError(p, "end element token outside an element") }
                p += 1
                return
            case 0x05, 0x45, 0x07, 0x47, 0x08, 0x48, 0x09, 0x49, 0x0A, 0x0B:
                try self.valueToken(&p, end: end, into: &items)
            case 0x0C:
                guard !inTemplate else { throw BinXMLError(p, "template instance inside a template definition") }
                items.append(.content(try self.templateInstance(&p, end: end, depth: depth + 1)))
            case 0x0D, 0x0E:
                try self.need(p, 4, end, "substitution token")
                items.append(.substitution(index: Int(self.raw.le16(p + 1)), optional: token == 0x0E))
                p += 4
            case 0x0F:
                try self.need(p, 4, end, "fragment header")
                p += 4
            default:
                throw BinXMLError(p, "unexpected token \(Hex.padded(UInt64(token), width: 2))")
            }
        }
    }

    /// Text-like tokens: value, CDATA, character and entity references, processing instructions.
    private mutating func valueToken(_ p: inout Int, end: Int, into items: inout [TemplateItem]) throws {
        let token = self.raw[p]
        switch token {
        case 0x05, 0x45:
            try self.need(p, 2, end, "value token")
            let type = self.raw[p + 1]
            p += 2
            items.append(.text(try self.inlineValue(&p, end: end, type: type)))
        case 0x07, 0x47, 0x0B:
            try self.need(p, 3, end, "text token")
            let units = Int(self.raw.le16(p + 1))
            try self.need(p + 3, 2 * units, end, "text")
            let text = BinXMLValues.utf16(self.raw, p + 3, units: units, trimNULs: false)
            p += 3 + 2 * units
            // python-evtx writes processing instruction data as " data?>" after its target.
            items.append(.text(token == 0x0B ? (units > 0 ? " " + text + "?>" : "?>") : text))
        case 0x08, 0x48:
            try self.need(p, 3, end, "character reference")
            let value = self.raw.le16(p + 1)
            p += 3
            items.append(.text(String(Unicode.Scalar(value).map(Character.init) ?? "\u{FFFD}")))
        case 0x09, 0x49, 0x0A:
            try self.need(p, 5, end, "reference")
            let offset = Int(self.raw.le32(p + 1))
            p += 5
            let name = try self.name(at: offset, inline: &p, end: end)
            if token == 0x0A {
                items.append(.text("<?" + name))
            } else {
                let entities = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'"]
                items.append(.text(entities[name] ?? "&\(name);"))
            }
        default:
            throw BinXMLError(p, "unexpected token \(Hex.padded(UInt64(token), width: 2))")
        }
    }

    /// The value of a value token: a string with its length in front, or a scalar of its type.
    private func inlineValue(_ p: inout Int, end: Int, type: UInt8) throws -> String {
        switch type {
        case 0x00:
            return ""
        case 0x01, 0x02:
            try self.need(p, 2, end, "value")
            let count = Int(self.raw.le16(p))
            let size = type == 0x01 ? 2 * count : count
            try self.need(p + 2, size, end, "value")
            defer { p += 2 + size }
            return type == 0x01
                ? BinXMLValues.utf16(self.raw, p + 2, units: count, trimNULs: true) : BinXMLValues.ansi(self.raw, p + 2, count: count)
        default:
            guard let size = BinXMLValues.fixedSize(type) else {
                throw BinXMLError(p, "value token of type \(Hex.padded(UInt64(type), width: 2))")
            }
            try self.need(p, size, end, "value")
            defer { p += size }
            return try BinXMLValues.render(self.raw, p, size: size, type: type)
        }
    }

    /// An element from its open start token to its end (or close empty) token.
    private mutating func element(_ p: inout Int, end: Int, depth: Int, inTemplate: Bool) throws -> TemplateElement {
        guard depth < Self.depthLimit else { throw BinXMLError(p, "elements nested more than \(Self.depthLimit) deep") }
        let token = self.raw[p]
        try self.need(p, 11, end, "element")
        let nameOffset = Int(self.raw.le32(p + 7))
        p += 11
        let name = try self.name(at: nameOffset, inline: &p, end: end)
        if token & 0x40 != 0 {
            try self.need(p, 4, end, "attribute list")
            p += 4
        }
        var element = TemplateElement(name: name, attributes: [], children: [])
        while p < end, self.raw[p] == 0x06 || self.raw[p] == 0x46 {
            try self.need(p, 5, end, "attribute")
            let attributeNameOffset = Int(self.raw.le32(p + 1))
            p += 5
            let attributeName = try self.name(at: attributeNameOffset, inline: &p, end: end)
            var value: [TemplateItem] = []
            valueLoop: while p < end {
                switch self.raw[p] {
                case 0x05, 0x45, 0x08, 0x48, 0x09, 0x49: try self.valueToken(&p, end: end, into: &value)
                case 0x0D, 0x0E:
                    try self.need(p, 4, end, "substitution token")
                    value.append(.substitution(index: Int(self.raw.le16(p + 1)), optional: self.raw[p] == 0x0E))
                    p += 4
                default: break valueLoop
                }
            }
            element.attributes.append(TemplateAttribute(name: attributeName, value: value))
        }
        guard p < end else { throw BinXMLError(p, "element <\(name)> not closed before the end of its data") }
        switch self.raw[p] {
        case 0x02:
            p += 1
            try self.content(&p, end: end, depth: depth, inTemplate: inTemplate, closing: true, into: &element.children)
        case 0x03:
            p += 1
        default:
            throw BinXMLError(p, "element <\(name)>: unexpected token \(Hex.padded(UInt64(self.raw[p]), width: 2)) after its attributes")
        }
        return element
    }

    // MARK: - Names

    /// The name at a chunk offset; when the offset is `p` (the name is written inline), `p` moves past it.
    private mutating func name(at offset: Int, inline p: inout Int, end: Int) throws -> String {
        if offset == p {
            try self.need(offset, 8, end, "name")
            let length = 10 + 2 * Int(self.raw.le16(offset + 6))
            try self.need(offset, length, end, "name")
            p += length
        }
        if let cached = self.names[offset] { return cached }
        try self.need(offset, 8, self.raw.count, "name")
        let units = Int(self.raw.le16(offset + 6))
        try self.need(offset + 8, 2 * units, self.raw.count, "name")
        let name = BinXMLValues.utf16(self.raw, offset + 8, units: units, trimNULs: false)
        self.names[offset] = name
        return name
    }

    // MARK: - Templates

    /// A template instance and its values, filled in.
    private mutating func templateInstance(_ p: inout Int, end: Int, depth: Int) throws -> [EventContent] {
        guard depth < Self.depthLimit else { throw BinXMLError(p, "templates nested more than \(Self.depthLimit) deep") }
        try self.need(p, 10, end, "template instance")
        let definition = Int(self.raw.le32(p + 6))
        p += 10
        if definition == p {
            try self.need(p, 24, end, "template definition")
            let size = Int(self.raw.le32(p + 20))
            try self.need(p + 24, size, end, "template definition")
            p += 24 + size
        }
        let template = try self.template(at: definition, depth: depth)
        try self.need(p, 4, end, "substitution array")
        let count = Int(self.raw.le32(p))
        p += 4
        guard count <= (end - p) / 4 else { throw BinXMLError(p - 4, "substitution array of \(count) values does not fit its record") }
        var values: [SubstitutionValue] = []
        values.reserveCapacity(count)
        var valueOffset = p + 4 * count
        for i in 0..<count {
            let size = Int(self.raw.le16(p + 4 * i))
            let type = self.raw[p + 4 * i + 2]
            try self.need(valueOffset, size, end, "substitution value \(i)")
            values.append(try self.value(at: valueOffset, size: size, type: type, depth: depth))
            valueOffset += size
        }
        p = valueOffset
        return Self.fill(template.items, values: values)
    }

    /// The template defined at a chunk offset, compiled (once per chunk).
    private mutating func template(at offset: Int, depth: Int) throws -> BinXMLTemplate {
        if let cached = self.templates[offset] { return cached }
        try self.need(offset, 24, self.raw.count, "template definition")
        let size = Int(self.raw.le32(offset + 20))
        let end = offset + 24 + size
        try self.need(offset + 24, size, self.raw.count, "template definition")
        var position = offset + 24
        var items: [TemplateItem] = []
        try self.content(&position, end: end, depth: depth, inTemplate: true, closing: false, into: &items)
        let template = BinXMLTemplate(items: items)
        self.templates[offset] = template
        return template
    }

    /// One substitution value.
    private mutating func value(at offset: Int, size: Int, type: UInt8, depth: Int) throws -> SubstitutionValue {
        switch type {
        case 0x00: return .null
        case 0x01: return .text(BinXMLValues.utf16(self.raw, offset, units: size / 2, trimNULs: true))
        case 0x02: return .text(BinXMLValues.ansi(self.raw, offset, count: size))
        case 0x21: return .content(try self.fragment(offset, end: offset + size, depth: depth + 1))
        default: return .text(try BinXMLValues.render(self.raw, offset, size: size, type: type))
        }
    }

    // MARK: - Filling in

    /// Items with their substitution slots filled in from `values` (a slot past the end is null).
    static func fill(_ items: [TemplateItem], values: [SubstitutionValue]) -> [EventContent] {
        var out: [EventContent] = []
        self.fill(items, values: values, into: &out)
        return out
    }

    private static func fill(_ items: [TemplateItem], values: [SubstitutionValue], into out: inout [EventContent]) {
        for item in items {
            switch item {
            case .element(let element): out.append(.element(self.node(element, values: values)))
            case .text(let text): self.appendText(text, to: &out)
            case .substitution(let index, _):
                guard index < values.count else { continue }
                switch values[index] {
                case .null: break
                case .text(let text): self.appendText(text, to: &out)
                case .content(let content): self.append(content, to: &out)
                }
            case .content(let content): self.append(content, to: &out)
            }
        }
    }

    private static func node(_ element: TemplateElement, values: [SubstitutionValue]) -> EventNode {
        var attributes: [EventAttribute] = []
        attributes.reserveCapacity(element.attributes.count)
        for attribute in element.attributes {
            if attribute.value.count == 1, case .substitution(let index, optional: true) = attribute.value[0] {
                if index >= values.count { continue }
                if case .null = values[index] { continue }
            }
            var text = ""
            for piece in attribute.value {
                switch piece {
                case .text(let part): text += part
                case .substitution(let index, _):
                    guard index < values.count else { continue }
                    switch values[index] {
                    case .null: break
                    case .text(let part): text += part
                    case .content(let content): text += Self.xml(content)
                    }
                case .content(let content): text += Self.xml(content)
                case .element(let inner): text += self.node(inner, values: values).xml
                }
            }
            attributes.append(EventAttribute(name: attribute.name, value: text))
        }
        var children: [EventContent] = []
        children.reserveCapacity(element.children.count)
        self.fill(element.children, values: values, into: &children)
        return EventNode(name: element.name, attributes: attributes, children: children)
    }

    private static func append(_ content: [EventContent], to out: inout [EventContent]) {
        for part in content {
            switch part {
            case .element: out.append(part)
            case .text(let text): self.appendText(text, to: &out)
            }
        }
    }

    @inline(__always) private static func appendText(_ text: String, to out: inout [EventContent]) {
        guard !text.isEmpty else { return }
        if case .text(let previous) = out.last {
            out[out.count - 1] = .text(previous + text)
        } else {
            out.append(.text(text))
        }
    }

    /// Content as XML text (binary XML used as an attribute's value).
    private static func xml(_ content: [EventContent]) -> String {
        var out = ""
        for part in content {
            switch part {
            case .element(let node): out += node.xml
            case .text(let text): out += text
            }
        }
        return out
    }
}
