// Durations as the configuration writes them ("1m30s").

extension Duration {
    /// `90s` → "1m30s": the form the configuration uses.
    public var compactText: String {
        var ms = self.nanosecondsClamped / 1_000_000
        if ms == 0 { return "0s" }
        var out = ""
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] where ms >= size {
            out += "\(ms / size)\(unit)"
            ms %= size
        }
        return out
    }
}
