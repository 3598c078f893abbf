import SKKernels

/// How a KV cache stores keys and values: f32, or f16 (half the memory, llama.cpp's default).
public enum KVDType: String, CaseIterable, Sendable {
    case f32, f16
    public var bytes: Int { self == .f32 ? 4 : 2 }

    func makeStorage(capacity: Int, headDim: Int) -> KVStorage {
        switch self {
        case .f32: return F32KVStorage(capacity: capacity, headDim: headDim)
        case .f16: return F16KVStorage(capacity: capacity, headDim: headDim)
        }
    }
}

/// The bytes of one KV head's keys and values, slot by slot (`capacity` slots of `headDim`).
/// Attention reads them only through this protocol, a whole head's slots per call (never one
/// dynamic call per slot), so a new storage type (quantized keys, say) is one conformer here.
/// Storage is allocated, not filled: a full cache's pages become resident as slots are written.
protocol KVStorage: AnyObject {
    var dtype: KVDType { get }
    /// Writes slot `slot`'s key and value (f32 in; the storage rounds to its type).
    func store(slot: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>)
    /// Moves the slots at `keep` (ascending) to the front, a run of consecutive slots at a time.
    func compact(keep: [Int])
    /// `out[t] = scale · (key[slots[t]] · q)` for t < count.
    func scores(_ q: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int, scale: Float, into out: UnsafeMutablePointer<Float>)
    /// `out[0..<headDim] += Σ_t weights[t] · value[slots[t]]`, t in order.
    func accumulate(into out: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int)
    /// Keys and values of slots 0..<count as f32 rows, for sgemm and the "cache" position mode:
    /// the storage itself (f32), or decoded into `scratch` (2 · count · headDim floats).
    func f32Rows(count: Int, scratch: UnsafeMutablePointer<Float>) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>)
    /// Slot `slot` as f32 (tests).
    func read(slot: Int, key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>)
}

/// Both buffers of a storage and the slot-run compaction they share.
class KVStorageBase {
    let capacity: Int
    let headDim: Int
    let elementBytes: Int
    let keys: UnsafeMutableRawPointer     // (capacity, headDim)
    let values: UnsafeMutableRawPointer   // (capacity, headDim)

    init(capacity: Int, headDim: Int, elementBytes: Int) {
        self.capacity = capacity
        self.headDim = headDim
        self.elementBytes = elementBytes
        let bytes = max(1, capacity * headDim * elementBytes)
        keys = .allocate(byteCount: bytes, alignment: 64)
        values = .allocate(byteCount: bytes, alignment: 64)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Runs of consecutive kept slots move with one memmove each (a window evicting one slot per
    /// step moves the whole cache once, at memory speed).
    func compact(keep: [Int]) {
        let row = headDim * elementBytes
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
    }
}

/// f32 keys and values: read in place.
final class F32KVStorage: KVStorageBase, KVStorage {
    let kernels = sk_kernels_best().pointee
    var dtype: KVDType { .f32 }
    var k32: UnsafeMutablePointer<Float> { keys.assumingMemoryBound(to: Float.self) }
    var v32: UnsafeMutablePointer<Float> { values.assumingMemoryBound(to: Float.self) }

    init(capacity: Int, headDim: Int) { super.init(capacity: capacity, headDim: headDim, elementBytes: 4) }

    func store(slot: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>) {
        (k32 + slot * headDim).update(from: key, count: headDim)
        (v32 + slot * headDim).update(from: value, count: headDim)
    }

    func scores(_ q: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int, scale: Float, into out: UnsafeMutablePointer<Float>) {
        let hd = headDim, k = k32
        for t in 0..<count { out[t] = kernels.dot_f32(k + slots[t] * hd, q, Int32(hd)) * scale }
    }

    func accumulate(into out: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int) {
        let hd = headDim, v = v32
        for t in 0..<count {
            let w = weights[t], vv = v + slots[t] * hd
            for d in 0..<hd { out[d] += w * vv[d] }
        }
    }

    func f32Rows(count: Int, scratch: UnsafeMutablePointer<Float>) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        (UnsafePointer(k32), UnsafePointer(v32))
    }

    func read(slot: Int, key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>) {
        key.update(from: k32 + slot * headDim, count: headDim)
        value.update(from: v32 + slot * headDim, count: headDim)
    }
}

/// f16 keys and values (round to nearest even; F16C / NEON / scalar): dot products and the value
/// accumulation read the halves directly (f16 dot and axpy kernels).
final class F16KVStorage: KVStorageBase, KVStorage {
    let kernels = sk_kernels_best().pointee
    var dtype: KVDType { .f16 }
    var k16: UnsafeMutablePointer<UInt16> { keys.assumingMemoryBound(to: UInt16.self) }
    var v16: UnsafeMutablePointer<UInt16> { values.assumingMemoryBound(to: UInt16.self) }

    init(capacity: Int, headDim: Int) { super.init(capacity: capacity, headDim: headDim, elementBytes: 2) }

    func store(slot: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>) {
        sk_f32_to_f16_n(key, k16 + slot * headDim, headDim)
        sk_f32_to_f16_n(value, v16 + slot * headDim, headDim)
    }

    func scores(_ q: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int, scale: Float, into out: UnsafeMutablePointer<Float>) {
        let hd = headDim, k = k16
        for t in 0..<count { out[t] = kernels.dot_f16(k + slots[t] * hd, q, Int32(hd)) * scale }
    }

    func accumulate(into out: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int) {
        let hd = headDim, v = v16
        for t in 0..<count { kernels.axpy_f16(out, weights[t], v + slots[t] * hd, Int32(hd)) }
    }

    func f32Rows(count: Int, scratch: UnsafeMutablePointer<Float>) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        sk_f16_to_f32_n(k16, scratch, count * headDim)
        sk_f16_to_f32_n(v16, scratch + count * headDim, count * headDim)
        return (UnsafePointer(scratch), UnsafePointer(scratch + count * headDim))
    }

    func read(slot: Int, key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>) {
        sk_f16_to_f32_n(k16 + slot * headDim, key, headDim)
        sk_f16_to_f32_n(v16 + slot * headDim, value, headDim)
    }
}
