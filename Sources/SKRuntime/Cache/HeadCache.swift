import SKKernels

/// How a KV cache stores keys and values: f32, or f16 (half the memory, llama.cpp's default;
/// decoded to f32 once per layer and step for attention).
public enum KVDType: String, CaseIterable, Sendable {
    case f32, f16
    public var bytes: Int { self == .f32 ? 4 : 2 }
}

/// The cached keys and values of one KV head of one layer, in position order: keys are stored
/// rotated at their absolute position (RoPE applied once, never re-rotated in place; the "cache"
/// position mode applies a delta rotation on the fly), with each slot's absolute position and its
/// accumulated attention score (H2O). Storage is allocated, not filled: a full cache's pages
/// become resident as slots are written.
public final class HeadCache {
    public let capacity: Int
    let headDim: Int
    let dtype: KVDType
    let keys: UnsafeMutableRawPointer     // (capacity, headDim) elements of dtype
    let values: UnsafeMutableRawPointer   // (capacity, headDim)
    public internal(set) var positions: [Int] = []
    var scores: [Double] = []  // accumulated attention, H2O

    init(capacity: Int, headDim: Int, dtype: KVDType = .f32) {
        self.capacity = capacity
        self.headDim = headDim
        self.dtype = dtype
        let bytes = max(1, capacity * headDim * dtype.bytes)
        keys = .allocate(byteCount: bytes, alignment: 64)
        values = .allocate(byteCount: bytes, alignment: 64)
        positions.reserveCapacity(capacity)
        scores.reserveCapacity(capacity)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    public var count: Int { positions.count }

    /// f32 keys and values (an f32 cache only).
    var keys32: UnsafePointer<Float> { UnsafePointer(keys.assumingMemoryBound(to: Float.self)) }
    var values32: UnsafePointer<Float> { UnsafePointer(values.assumingMemoryBound(to: Float.self)) }

    /// Slots 0..<count as f32 into `k` and `v` (an f16 cache).
    func decode(keys k: UnsafeMutablePointer<Float>, values v: UnsafeMutablePointer<Float>) {
        sk_f16_to_f32_n(keys.assumingMemoryBound(to: UInt16.self), k, count * headDim)
        sk_f16_to_f32_n(values.assumingMemoryBound(to: UInt16.self), v, count * headDim)
    }

    func append(key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int) {
        let o = positions.count * headDim
        switch dtype {
        case .f32:
            (keys.assumingMemoryBound(to: Float.self) + o).update(from: key, count: headDim)
            (values.assumingMemoryBound(to: Float.self) + o).update(from: value, count: headDim)
        case .f16:
            sk_f32_to_f16_n(key, keys.assumingMemoryBound(to: UInt16.self) + o, headDim)
            sk_f32_to_f16_n(value, values.assumingMemoryBound(to: UInt16.self) + o, headDim)
        }
        positions.append(position)
        scores.append(0)
    }

    /// Keeps the slots at `keep` (ascending), moving them to the front: runs of consecutive
    /// kept slots move with one memmove each (a window evicting one slot per step moves the
    /// whole cache once, at memory speed).
    func compact(keep: [Int]) {
        let row = headDim * dtype.bytes
        var dst = 0, i = 0
        while i < keep.count {
            var j = i
            while j + 1 < keep.count && keep[j + 1] == keep[j] + 1 { j += 1 }
            let src = keep[i], run = j - i + 1
            if src != dst {
                (keys + dst * row).copyMemory(from: keys + src * row, byteCount: run * row)
                (values + dst * row).copyMemory(from: values + src * row, byteCount: run * row)
            }
            dst += run
            i = j + 1
        }
        for (dst, src) in keep.enumerated() where dst != src {
            positions[dst] = positions[src]
            scores[dst] = scores[src]
        }
        positions.removeLast(positions.count - keep.count)
        scores.removeLast(scores.count - keep.count)
    }

    func reset() {
        positions.removeAll(keepingCapacity: true)
        scores.removeAll(keepingCapacity: true)
    }
}
