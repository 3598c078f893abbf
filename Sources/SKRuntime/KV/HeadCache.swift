/// The cached keys and values of one KV head of one layer, in position order: keys are stored
/// rotated at their absolute position (RoPE applied once, never re-rotated in place; the "cache"
/// position mode applies a delta rotation on the fly), with each slot's absolute position. What a
/// slot's bytes are is the storage's business (`KVStorage`); which slots survive is the policy's.
public final class HeadCache {
    public let capacity: Int
    let headDim: Int
    let storage: KVStorage
    public internal(set) var positions: [Int] = []

    init(capacity: Int, headDim: Int, dtype: KVDType = .f32, pinned: Int = 0) {
        self.capacity = capacity
        self.headDim = headDim
        storage = dtype.makeStorage(capacity: capacity, headDim: headDim, pinned: pinned)
        positions.reserveCapacity(capacity)
    }

    public var count: Int { positions.count }
    var dtype: KVDType { storage.dtype }

    func append(key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int) {
        storage.store(slot: positions.count, key: key, value: value, position: position)
        positions.append(position)
    }

    /// Keeps the slots at `keep` (ascending), moving them to the front.
    func compact(keep: [Int]) {
        storage.compact(keep: keep)
        for (dst, src) in keep.enumerated() where dst != src { positions[dst] = positions[src] }
        positions.removeLast(positions.count - keep.count)
    }

    /// Keeps the oldest `count` slots (a roll back).
    func truncate(to count: Int) {
        storage.truncate(count: count)
        positions.removeLast(positions.count - count)
    }

    func reset() {
        positions.removeAll(keepingCapacity: true)
        storage.reset()
    }
}
