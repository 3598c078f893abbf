/// The cached keys and values of one KV head of one layer, in position order: keys are stored
/// rotated at their absolute position (RoPE applied once, never re-rotated in place; the "cache"
/// position mode applies a delta rotation on the fly), with each slot's absolute position and its
/// accumulated attention score (H2O).
public final class HeadCache {
    public let capacity: Int
    let headDim: Int
    var keys: [Float]          // (capacity, headDim)
    var values: [Float]        // (capacity, headDim)
    public internal(set) var positions: [Int] = []
    var scores: [Double] = []  // accumulated attention, H2O

    init(capacity: Int, headDim: Int) {
        self.capacity = capacity
        self.headDim = headDim
        keys = [Float](repeating: 0, count: capacity * headDim)
        values = keys
        positions.reserveCapacity(capacity)
        scores.reserveCapacity(capacity)
    }

    public var count: Int { positions.count }

    func append(key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int) {
        let s = positions.count
        for d in 0..<headDim {
            keys[s * headDim + d] = key[d]
            values[s * headDim + d] = value[d]
        }
        positions.append(position)
        scores.append(0)
    }

    /// Keeps the slots at `keep` (ascending), moving them to the front: runs of consecutive
    /// kept slots move with one memmove each (a window evicting one slot per step moves the
    /// whole cache once, at memory speed).
    func compact(keep: [Int]) {
        let hd = headDim
        keys.withUnsafeMutableBufferPointer { k in
            values.withUnsafeMutableBufferPointer { v in
                var dst = 0, i = 0
                while i < keep.count {
                    var j = i
                    while j + 1 < keep.count && keep[j + 1] == keep[j] + 1 { j += 1 }
                    let src = keep[i], run = j - i + 1
                    if src != dst {
                        (k.baseAddress! + dst * hd).update(from: k.baseAddress! + src * hd, count: run * hd)
                        (v.baseAddress! + dst * hd).update(from: v.baseAddress! + src * hd, count: run * hd)
                    }
                    dst += run
                    i = j + 1
                }
            }
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
