// A bounded table with least-recently-used eviction. Values live in one array of nodes,
// linked in use order by 32-bit indices; a dictionary maps keys to nodes. Used by the
// engine for every per-key record, so memory stays bounded however many attackers come.

struct LRUTable<Key: Hashable, Value> {
    private struct Node {
        var key: Key
        var value: Value
        var newer: Int32
        var older: Int32
    }

    private var index: [Key: Int32] = [:]
    private var nodes: [Node] = []
    private var free: [Int32] = []
    /// Most recently used.
    private var newest: Int32 = -1
    /// Least recently used: the next to go.
    private var oldest: Int32 = -1
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        // Reserved, not touched: the pages become resident only as entries arrive, and the
        // tables never copy themselves while growing under an attack. Past a million entries
        // the rest grows as needed (address space is not free everywhere: ulimit -v).
        let reserved = min(self.capacity, 1 << 20)
        self.index.reserveCapacity(reserved)
        self.nodes.reserveCapacity(reserved)
    }

    var count: Int { self.index.count }

    func peek(_ key: Key) -> Value? {
        guard let slot = self.index[key] else { return nil }
        return self.nodes[Int(slot)].value
    }

    /// Runs `body` on the value for `key`, creating it with `make` when absent, and marks
    /// it most recently used. When a new key takes the table past its capacity, the least
    /// recently used entry is evicted and returned. One hash lookup either way.
    @discardableResult
    mutating func update<R>(
        _ key: Key, make: () -> Value, _ body: (inout Value) -> R
    ) -> (result: R, evicted: (key: Key, value: Value)?) {
        let candidate = self.free.last ?? Int32(self.nodes.count)
        var isNew = false
        let slot = Self.claim(&self.index[key, default: -1], candidate: candidate, isNew: &isNew)
        guard isNew else {
            self.touch(slot)
            return (body(&self.nodes[Int(slot)].value), nil)
        }
        let node = Node(key: key, value: make(), newer: -1, older: self.newest)
        if self.free.last == candidate {
            self.free.removeLast()
            self.nodes[Int(slot)] = node
        } else {
            self.nodes.append(node)
        }
        if self.newest >= 0 { self.nodes[Int(self.newest)].newer = slot }
        self.newest = slot
        if self.oldest < 0 { self.oldest = slot }
        var evicted: (Key, Value)?
        if self.index.count > self.capacity, self.oldest >= 0, self.oldest != slot {
            let victim = self.oldest
            let old = self.nodes[Int(victim)]
            evicted = (old.key, old.value)
            self.unlink(victim)
            self.index.removeValue(forKey: old.key)
            self.free.append(victim)
        }
        return (body(&self.nodes[Int(slot)].value), evicted)
    }

    @inline(__always)
    private static func claim(_ entry: inout Int32, candidate: Int32, isNew: inout Bool) -> Int32 {
        if entry < 0 {
            entry = candidate
            isNew = true
        }
        return entry
    }

    /// Changes the value for `key` if present, without creating it.
    @discardableResult
    mutating func modifyIfPresent<R>(_ key: Key, _ body: (inout Value) -> R) -> R? {
        guard let slot = self.index[key] else { return nil }
        self.touch(slot)
        return body(&self.nodes[Int(slot)].value)
    }

    @discardableResult
    mutating func remove(_ key: Key) -> Value? {
        guard let slot = self.index.removeValue(forKey: key) else { return nil }
        self.unlink(slot)
        self.free.append(slot)
        return self.nodes[Int(slot)].value
    }

    /// Entries from most to least recently used.
    func entries() -> [(key: Key, value: Value)] {
        var result: [(Key, Value)] = []
        result.reserveCapacity(self.index.count)
        var slot = self.newest
        while slot >= 0 {
            let node = self.nodes[Int(slot)]
            result.append((node.key, node.value))
            slot = node.older
        }
        return result
    }

    private mutating func touch(_ slot: Int32) {
        guard slot != self.newest else { return }
        self.unlink(slot)
        self.nodes[Int(slot)].older = self.newest
        self.nodes[Int(slot)].newer = -1
        if self.newest >= 0 { self.nodes[Int(self.newest)].newer = slot }
        self.newest = slot
        if self.oldest < 0 { self.oldest = slot }
    }

    private mutating func unlink(_ slot: Int32) {
        let node = self.nodes[Int(slot)]
        if node.newer >= 0 { self.nodes[Int(node.newer)].older = node.older } else { self.newest = node.older }
        if node.older >= 0 { self.nodes[Int(node.older)].newer = node.newer } else { self.oldest = node.newer }
        self.nodes[Int(slot)].newer = -1
        self.nodes[Int(slot)].older = -1
    }
}
