import SKKernels

/// How a KV cache stores keys and values: f32, f16 (half the memory, llama.cpp's default), int8
/// (blocks of 32 with an f16 scale, Q8_0's rule: 8.5 bits per element, 0.27x f32), int4 (blocks
/// of 32, f16 scale max/7, 4-bit codes: 4.5 bits per element), or k8v4: int8 keys and int4
/// values (6.5 bits per element on average, 0.20x f32), or kivi4: KIVI's int4 keys, quantized per
/// channel over groups of 32 slots, with int4 values (4.5 bits per element plus a group id and the
/// groups' scales, about 0.16x f32). Keys carry the precision attention needs: on SmolLM2 int4
/// values cost +0.5% perplexity, int4 keys per token +8.6%; with both in int4, keys per token
/// +6.9%, per channel (kivi4) +1.8% (docs/measurements/kv-quality.md).
public enum KVDType: String, CaseIterable, Sendable {
    case f32, f16, int8, int4, k8v4, kivi4

    /// How keys are stored (k8v4: int8).
    public var keyType: KVDType { self == .k8v4 ? .int8 : self }
    /// How values are stored (k8v4, kivi4: int4).
    public var valueType: KVDType { self == .k8v4 || self == .kivi4 ? .int4 : self }

    /// Bytes of one key vector of `headDim` elements.
    public func keyBytes(headDim: Int) -> Int { Self.vectorBytes(keyType, headDim: headDim) }
    /// Bytes of one value vector of `headDim` elements.
    public func valueBytes(headDim: Int) -> Int { Self.vectorBytes(valueType, headDim: headDim) }
    /// Bytes of one slot of one KV head: its key and its value (kivi4: plus its share of its
    /// group's scales, held beside the slots: `KVStorage.sideBytes`).
    public func slotBytes(headDim: Int) -> Int { keyBytes(headDim: headDim) + valueBytes(headDim: headDim) }

    /// Bytes one KV head of a full cache of `slots` holds (kivi4: with, beside the slots, its
    /// groups' scales and the unsealed keys); nil when that overflows.
    public func headBytes(slots: Int, headDim: Int) -> Int? {
        let (rows, o) = slots.multipliedReportingOverflow(by: slotBytes(headDim: headDim))
        guard !o else { return nil }
        guard self == .kivi4 else { return rows }
        let side = KIVIKVStorage.sideBytes(groups: KIVIKVStorage.initialGroups(capacity: slots), pinned: 0, headDim: headDim)
        let (total, o2) = rows.addingReportingOverflow(side)
        return o2 ? nil : total
    }

    static func vectorBytes(_ t: KVDType, headDim: Int) -> Int {
        switch t {
        case .f32: return 4 * headDim
        case .f16: return 2 * headDim
        case .int8:
            let b = BlockKVStorage.block(headDim: headDim)
            return headDim / b * (2 + b)
        case .int4, .k8v4:   // (k8v4 is never a side's type: keyType / valueType)
            let b = BlockKVStorage.block(headDim: headDim)
            return headDim / b * (2 + b / 2)
        case .kivi4:         // (as keyType: codes and a u32 group id)
            return headDim / 2 + 4
        }
    }

    func makeStorage(capacity: Int, headDim: Int, pinned: Int = 0) -> KVStorage {
        switch self {
        case .f32: return F32KVStorage(capacity: capacity, headDim: headDim)
        case .f16: return F16KVStorage(capacity: capacity, headDim: headDim)
        case .int8, .int4, .k8v4: return BlockKVStorage(dtype: self, capacity: capacity, headDim: headDim)
        case .kivi4: return KIVIKVStorage(capacity: capacity, headDim: headDim, pinned: pinned)
        }
    }
}

/// The bytes of one KV head's keys and values, slot by slot (`capacity` slots of `headDim`).
/// Attention reads them only through this protocol, a whole head's slots per call (never one
/// dynamic call per slot), so a new storage type (quantized keys, say) is one conformer here.
/// Storage is allocated, not filled: a full cache's pages become resident as slots are written.
protocol KVStorage: AnyObject {
    var dtype: KVDType { get }
    var headDimension: Int { get }
    /// Writes slot `slot`'s key and value (f32 in; the storage rounds to its type), those of the
    /// token at `position` (kivi4 keeps the sinks' keys apart; the other types ignore it).
    func store(slot: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position: Int)
    /// Moves the slots at `keep` (ascending) to the front, a run of consecutive slots at a time.
    func compact(keep: [Int])
    /// `out[t] = scale · (key[slots[t]] · q)` for t < count.
    func scores(_ q: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int, scale: Float, into out: UnsafeMutablePointer<Float>)
    /// `out[0..<headDim] += Σ_t weights[t] · value[slots[t]]`, t in order.
    func accumulate(into out: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int)
    /// GQA: `heads` query heads (`q`: heads × headDim, contiguous) against the same slots:
    /// `out[h · stride + t]` is head h's `scores`, bit for bit.
    func scoresGroup(_ q: UnsafePointer<Float>, heads: Int, slots: UnsafePointer<Int>, count: Int, scale: Float,
                     into out: UnsafeMutablePointer<Float>, stride: Int)
    /// GQA: `out[h · headDim ..< (h + 1) · headDim]` += head h's `accumulate` with `weights[h · stride ...]`, bit for bit.
    func accumulateGroup(into out: UnsafeMutablePointer<Float>, heads: Int, weights: UnsafePointer<Float>, stride: Int,
                         slots: UnsafePointer<Int>, count: Int)
    /// Keys and values of slots 0..<count as f32 rows, for sgemm and the "cache" position mode:
    /// the storage itself (f32), or decoded into `scratch` (2 · count · headDim floats).
    func f32Rows(count: Int, scratch: UnsafeMutablePointer<Float>) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>)
    /// Slot `slot` as f32 (tests).
    func read(slot: Int, key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>)
    /// Bytes held beside the slots (kivi4's group scales and unsealed keys; 0 for the others).
    var sideBytes: Int { get }
    /// Keeps slots 0..<count (a roll back: the newest go).
    func truncate(count: Int)
    /// Forgets every slot (the cache starts again).
    func reset()
}

/// The group calls as the per-head calls in a loop: the default for storages without group
/// kernels, and the fallback of those whose kernels cover some types only.
extension KVStorage {
    /// `f32Rows` for a storage that decodes slot by slot (`read`): keys then values in `scratch`.
    func f32RowsRead(count: Int, scratch: UnsafeMutablePointer<Float>) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        let hd = headDimension, vals = scratch + count * hd
        for j in 0..<count { read(slot: j, key: scratch + j * hd, value: vals + j * hd) }
        return (UnsafePointer(scratch), UnsafePointer(vals))
    }
    var sideBytes: Int { 0 }
    func truncate(count: Int) { compact(keep: Array(0..<count)) }
    func reset() {}
    func scoresPerHead(_ q: UnsafePointer<Float>, heads: Int, slots: UnsafePointer<Int>, count: Int, scale: Float,
                       into out: UnsafeMutablePointer<Float>, stride: Int) {
        for h in 0..<heads { scores(q + h * headDimension, slots: slots, count: count, scale: scale, into: out + h * stride) }
    }
    func accumulatePerHead(into out: UnsafeMutablePointer<Float>, heads: Int, weights: UnsafePointer<Float>, stride: Int,
                           slots: UnsafePointer<Int>, count: Int) {
        for h in 0..<heads { accumulate(into: out + h * headDimension, weights: weights + h * stride, slots: slots, count: count) }
    }
    func scoresGroup(_ q: UnsafePointer<Float>, heads: Int, slots: UnsafePointer<Int>, count: Int, scale: Float,
                     into out: UnsafeMutablePointer<Float>, stride: Int) {
        scoresPerHead(q, heads: heads, slots: slots, count: count, scale: scale, into: out, stride: stride)
    }
    func accumulateGroup(into out: UnsafeMutablePointer<Float>, heads: Int, weights: UnsafePointer<Float>, stride: Int,
                         slots: UnsafePointer<Int>, count: Int) {
        accumulatePerHead(into: out, heads: heads, weights: weights, stride: stride, slots: slots, count: count)
    }
}

/// Both buffers of a storage and the slot-run compaction they share.
class KVStorageBase {
    let capacity: Int
    let headDim: Int
    var headDimension: Int { headDim }
    /// Bytes of one slot's key and of its value.
    let keyRowBytes: Int, valueRowBytes: Int
    let keys: UnsafeMutableRawPointer     // (capacity, keyRowBytes)
    let values: UnsafeMutableRawPointer   // (capacity, valueRowBytes)

    init(capacity: Int, headDim: Int, dtype: KVDType) {
        self.capacity = capacity
        self.headDim = headDim
        keyRowBytes = dtype.keyBytes(headDim: headDim)
        valueRowBytes = dtype.valueBytes(headDim: headDim)
        keys = .allocate(byteCount: max(1, capacity * keyRowBytes), alignment: 64)
        values = .allocate(byteCount: max(1, capacity * valueRowBytes), alignment: 64)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Runs of consecutive kept slots move with one memmove each (a window evicting one slot per
    /// step moves the whole cache once, at memory speed).
    func compact(keep: [Int]) {
        let kr = keyRowBytes, vr = valueRowBytes
        var dst = 0, i = 0
        while i < keep.count {
            var j = i
            while j + 1 < keep.count && keep[j + 1] == keep[j] + 1 { j += 1 }
            let src = keep[i], run = j - i + 1
            if src != dst {
                (keys + dst * kr).copyMemory(from: keys + src * kr, byteCount: run * kr)
                (values + dst * vr).copyMemory(from: values + src * vr, byteCount: run * vr)
            }
            dst += run
            i = j + 1
        }
    }
}

/// f32 keys and values: read in place (kv_f32.c: a whole head's, or GQA group's, slots per call).
final class F32KVStorage: KVStorageBase, KVStorage {
    var dtype: KVDType { .f32 }
    var k32: UnsafeMutablePointer<Float> { keys.assumingMemoryBound(to: Float.self) }
    var v32: UnsafeMutablePointer<Float> { values.assumingMemoryBound(to: Float.self) }

    init(capacity: Int, headDim: Int) { super.init(capacity: capacity, headDim: headDim, dtype: .f32) }

    func store(slot: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position _: Int) {
        (k32 + slot * headDim).update(from: key, count: headDim)
        (v32 + slot * headDim).update(from: value, count: headDim)
    }

    func scores(_ q: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int, scale: Float, into out: UnsafeMutablePointer<Float>) {
        scoresGroup(q, heads: 1, slots: slots, count: count, scale: scale, into: out, stride: count)
    }

    func accumulate(into out: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int) {
        accumulateGroup(into: out, heads: 1, weights: weights, stride: count, slots: slots, count: count)
    }

    func scoresGroup(_ q: UnsafePointer<Float>, heads: Int, slots: UnsafePointer<Int>, count: Int, scale: Float,
                     into out: UnsafeMutablePointer<Float>, stride: Int) {
        slots.withMemoryRebound(to: CLong.self, capacity: count) { s in
            sk_kv32_scores_group(k32, s, Int32(count), q, Int32(heads), scale, out, stride, Int32(headDim))
        }
    }

    func accumulateGroup(into out: UnsafeMutablePointer<Float>, heads: Int, weights: UnsafePointer<Float>, stride: Int,
                         slots: UnsafePointer<Int>, count: Int) {
        slots.withMemoryRebound(to: CLong.self, capacity: count) { s in
            sk_kv32_accumulate_group(out, weights, stride, v32, s, Int32(count), Int32(heads), Int32(headDim))
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
/// accumulation read the halves directly (kv_f16.c: a whole head's slots per call).
final class F16KVStorage: KVStorageBase, KVStorage {
    var dtype: KVDType { .f16 }
    var k16: UnsafeMutablePointer<UInt16> { keys.assumingMemoryBound(to: UInt16.self) }
    var v16: UnsafeMutablePointer<UInt16> { values.assumingMemoryBound(to: UInt16.self) }

    init(capacity: Int, headDim: Int) { super.init(capacity: capacity, headDim: headDim, dtype: .f16) }

    func store(slot: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>, position _: Int) {
        sk_f32_to_f16_n(key, k16 + slot * headDim, headDim)
        sk_f32_to_f16_n(value, v16 + slot * headDim, headDim)
    }

    // a whole head's slots per call (kv_f16.c)
    func scores(_ q: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int, scale: Float, into out: UnsafeMutablePointer<Float>) {
        slots.withMemoryRebound(to: CLong.self, capacity: count) { s in
            sk_kv16_scores(k16, s, Int32(count), q, scale, out, Int32(headDim))
        }
    }

    func accumulate(into out: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int) {
        slots.withMemoryRebound(to: CLong.self, capacity: count) { s in
            sk_kv16_accumulate(out, weights, v16, s, Int32(count), Int32(headDim))
        }
    }

    // GQA: a group's heads in one pass over the rows (kv_group.c)
    func scoresGroup(_ q: UnsafePointer<Float>, heads: Int, slots: UnsafePointer<Int>, count: Int, scale: Float,
                     into out: UnsafeMutablePointer<Float>, stride: Int) {
        slots.withMemoryRebound(to: CLong.self, capacity: count) { s in
            sk_kv16_scores_group(k16, s, Int32(count), q, Int32(heads), scale, out, stride, Int32(headDim))
        }
    }

    func accumulateGroup(into out: UnsafeMutablePointer<Float>, heads: Int, weights: UnsafePointer<Float>, stride: Int,
                         slots: UnsafePointer<Int>, count: Int) {
        slots.withMemoryRebound(to: CLong.self, capacity: count) { s in
            sk_kv16_accumulate_group(out, weights, stride, v16, s, Int32(count), Int32(heads), Int32(headDim))
        }
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

/// Block-quantized keys and values (int8, int4, k8v4: kv_int8.c): each vector as blocks of 32
/// elements (or one block when the head is not a multiple of 32) with an f16 scale. Dot products
/// and the value accumulation read the codes directly, a whole head's slots per call; f32 rows are
/// decoded for sgemm. Keys and values each have their type's kernels (k8v4: int8 keys, int4
/// values), so the types differ only in which kernels each side uses.
final class BlockKVStorage: KVStorageBase, KVStorage {
    typealias Quantize = @convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<UInt8>?, Int32, Int32) -> Void
    typealias Dequantize = @convention(c) (UnsafePointer<UInt8>?, UnsafeMutablePointer<Float>?, Int32, Int32) -> Void
    typealias Scores = @convention(c) (UnsafePointer<UInt8>?, Int, UnsafePointer<CLong>?, Int32, UnsafePointer<Float>?, Float, UnsafeMutablePointer<Float>?, Int32, Int32) -> Void
    typealias Accumulate = @convention(c) (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<UInt8>?, Int, UnsafePointer<CLong>?, Int32, Int32, Int32) -> Void

    /// One side's (keys' or values') element type and kernels, for vectors of `headDim` in
    /// blocks of `block`.
    struct Side {
        let type: KVDType
        let headDim: Int, block: Int
        /// int4 with a power-of-two head: vectors are stored Walsh-Hadamard rotated (sk_fwht).
        let rotated: Bool
        let quantize: Quantize, dequantize: Dequantize, scores: Scores, accumulate: Accumulate

        init(_ type: KVDType, headDim: Int) {
            self.type = type
            self.headDim = headDim
            block = BlockKVStorage.block(headDim: headDim)
            rotated = BlockKVStorage.rotates(dtype: type, headDim: headDim)
            if type == .int4 {
                (quantize, dequantize, scores, accumulate) = (sk_kv4_quantize, sk_kv4_dequantize, sk_kv4_scores, sk_kv4_accumulate)
            } else {
                (quantize, dequantize, scores, accumulate) = (sk_kv8_quantize, sk_kv8_dequantize, sk_kv8_scores, sk_kv8_accumulate)
            }
        }

        /// `body` on `x` (headDim floats), or on a rotated copy when the side rotates.
        @inline(__always)
        func withStored<R>(_ x: UnsafePointer<Float>, _ body: (UnsafePointer<Float>) -> R) -> R {
            guard rotated else { return body(x) }
            return withUnsafeTemporaryAllocation(of: Float.self, capacity: headDim) { t in
                let p = t.baseAddress!
                p.update(from: x, count: headDim)
                sk_fwht(p, Int32(headDim))
                return body(p)
            }
        }

        func store(_ x: UnsafePointer<Float>, into row: UnsafeMutablePointer<UInt8>) {
            withStored(x) { quantize($0, row, Int32(headDim), Int32(block)) }
        }

        func read(_ row: UnsafePointer<UInt8>, into out: UnsafeMutablePointer<Float>) {
            dequantize(row, out, Int32(headDim), Int32(block))
            if rotated { sk_fwht(out, Int32(headDim)) }
        }

        // (H q) · (H k) = q · k
        func scores(_ q: UnsafePointer<Float>, rows: UnsafePointer<UInt8>, rowBytes: Int, slots: UnsafePointer<CLong>, count: Int,
                    scale: Float, into out: UnsafeMutablePointer<Float>) {
            withStored(q) { scores(rows, rowBytes, slots, Int32(count), $0, scale, out, Int32(headDim), Int32(block)) }
        }

        func accumulate(into out: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>, rows: UnsafePointer<UInt8>, rowBytes: Int,
                        slots: UnsafePointer<CLong>, count: Int) {
            guard rotated else {
                return accumulate(out, weights, rows, rowBytes, slots, Int32(count), Int32(headDim), Int32(block))
            }
            // Σ w v = H (Σ w H v)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: headDim) { t in
                let acc = t.baseAddress!
                acc.initialize(repeating: 0, count: headDim)
                accumulate(acc, weights, rows, rowBytes, slots, Int32(count), Int32(headDim), Int32(block))
                sk_fwht(acc, Int32(headDim))
                for d in 0..<headDim { out[d] += acc[d] }
            }
        }
    }

    let dtype: KVDType
    let block: Int
    let key: Side, value: Side
    var kq: UnsafeMutablePointer<UInt8> { keys.assumingMemoryBound(to: UInt8.self) }
    var vq: UnsafeMutablePointer<UInt8> { values.assumingMemoryBound(to: UInt8.self) }

    static func block(headDim: Int) -> Int { headDim % 32 == 0 ? 32 : headDim }

    init(dtype: KVDType, capacity: Int, headDim: Int) {
        self.dtype = dtype
        block = Self.block(headDim: headDim)
        key = Side(dtype.keyType, headDim: headDim)
        value = Side(dtype.valueType, headDim: headDim)
        super.init(capacity: capacity, headDim: headDim, dtype: dtype)
    }

    /// Whether vectors of this type and head size are stored rotated: int4 (whose loss the
    /// rotation cuts most; int8's is already small) with a power-of-two head of at least 8.
    static func rotates(dtype: KVDType, headDim: Int) -> Bool { dtype == .int4 && headDim >= 8 && headDim & (headDim - 1) == 0 }

    func store(slot: Int, key k: UnsafePointer<Float>, value v: UnsafePointer<Float>, position _: Int) {
        key.store(k, into: kq + slot * keyRowBytes)
        value.store(v, into: vq + slot * valueRowBytes)
    }

    func scores(_ q: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int, scale: Float, into out: UnsafeMutablePointer<Float>) {
        slots.withMemoryRebound(to: CLong.self, capacity: count) { s in
            key.scores(q, rows: kq, rowBytes: keyRowBytes, slots: s, count: count, scale: scale, into: out)
        }
    }

    func accumulate(into out: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int) {
        slots.withMemoryRebound(to: CLong.self, capacity: count) { s in
            value.accumulate(into: out, weights: weights, rows: vq, rowBytes: valueRowBytes, slots: s, count: count)
        }
    }

    // GQA: int8 has group kernels (kv_group.c); int4 the per-head calls in a loop.
    func scoresGroup(_ q: UnsafePointer<Float>, heads: Int, slots: UnsafePointer<Int>, count: Int, scale: Float,
                     into out: UnsafeMutablePointer<Float>, stride: Int) {
        guard key.type == .int8 else {
            return scoresPerHead(q, heads: heads, slots: slots, count: count, scale: scale, into: out, stride: stride)
        }
        slots.withMemoryRebound(to: CLong.self, capacity: count) { s in
            sk_kv8_scores_group(kq, keyRowBytes, s, Int32(count), q, Int32(heads), scale, out, stride, Int32(headDim), Int32(block))
        }
    }

    func accumulateGroup(into out: UnsafeMutablePointer<Float>, heads: Int, weights: UnsafePointer<Float>, stride: Int,
                         slots: UnsafePointer<Int>, count: Int) {
        guard value.type == .int8 else {
            return accumulatePerHead(into: out, heads: heads, weights: weights, stride: stride, slots: slots, count: count)
        }
        slots.withMemoryRebound(to: CLong.self, capacity: count) { s in
            sk_kv8_accumulate_group(out, weights, stride, vq, valueRowBytes, s, Int32(count), Int32(heads), Int32(headDim), Int32(block))
        }
    }

    func f32Rows(count: Int, scratch: UnsafeMutablePointer<Float>) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        f32RowsRead(count: count, scratch: scratch)
    }

    func read(slot: Int, key k: UnsafeMutablePointer<Float>, value v: UnsafeMutablePointer<Float>) {
        key.read(kq + slot * keyRowBytes, into: k)
        value.read(vq + slot * valueRowBytes, into: v)
    }
}
