// Comparing secrets (API keys, bearer tokens) without leaking through timing how much of a
// guess was right.

/// True when both are equal; the time taken depends only on the length of `a`.
public func constantTimeEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    var difference: UInt8 = a.count == b.count ? 0 : 1
    var ai = a.makeIterator()
    var bi = b.makeIterator()
    while let x = ai.next() {
        let y = bi.next() ?? 0
        difference |= x ^ y
    }
    return difference == 0
}
