import SKKernels

/// KIVI (arXiv 2402.02750): keys in int4 quantized per channel over groups of slots, values in
/// int4 per token (as `int4` stores them: rotated, blocks of 32). kv_kivi.c has the rule and the
/// kernels. The newest keys wait, as f16, until `group` of them have been stored; then the
/// surviving ones are sealed into one group (per channel: an f16 scale and minimum over them).
/// Every slot's row carries its group id, so compaction moves rows as for the other types; a
/// group's scales are freed when no kept slot refers to it (policies that keep scattered slots
/// hold more groups than a window does: `sideBytes` counts what is held). The sinks (positions
/// below `pinned`) stay f16 for good: every query attends to them, and sealed with the tokens
/// after them they would be rounded again each time their thinned group is resealed.
final class KIVIKVStorage: KVStorageBase, KVStorage {
    /// Slots per group: KIVI's 32 (not tuned here).
    static let group = 32
    var dtype: KVDType { .kivi4 }
    let value: BlockKVStorage.Side
    /// The sinks' keys (index: their position), then the unsealed ones, as f16
    /// ((pinned + group) × headDim); the slot of the key at index i carries SK_KIVI_PENDING | i.
    let pending: UnsafeMutablePointer<UInt16>
    let pinned: Int
    /// Keys stored since the last seal (sinks aside): the next pending index is pinned + pendingCount.
    private var pendingCount = 0
    /// Groups' scales and minimums (2 × headDim f16 each), room for `groupCapacity` groups.
    private(set) var params: UnsafeMutablePointer<UInt16>
    private(set) var groupCapacity: Int
    /// Ids handed out so far (below it: in use or in `freeGroups`).
    private var groupsIssued = 0
    private var freeGroups: [UInt32] = []
    var kq: UnsafeMutablePointer<UInt8> { keys.assumingMemoryBound(to: UInt8.self) }
    var vq: UnsafeMutablePointer<UInt8> { values.assumingMemoryBound(to: UInt8.self) }

    init(capacity: Int, headDim: Int, pinned: Int = 0) {
        value = BlockKVStorage.Side(.int4, headDim: headDim)
        self.pinned = pinned
        pending = .allocate(capacity: (pinned + Self.group) * headDim)
        groupCapacity = Self.initialGroups(capacity: capacity)
        params = .allocate(capacity: groupCapacity * 2 * headDim)
        super.init(capacity: capacity, headDim: headDim, dtype: .kivi4)
    }

    deinit {
        pending.deallocate()
        params.deallocate()
    }

    /// Room for a full cache's or a window's groups (contiguous slots); grown by an eighth when a
    /// policy keeping scattered slots needs more.
    static func initialGroups(capacity: Int) -> Int { capacity / group + (capacity % group == 0 ? 0 : 1) + 1 }

    /// f16 beside the slots: the sinks' and the unsealed keys, each group's scales and minimums.
    static func sideBytes(groups: Int, pinned: Int, headDim: Int) -> Int { (pinned + group + 2 * groups) * headDim * 2 }

    var sideBytes: Int { Self.sideBytes(groups: groupCapacity, pinned: pinned, headDim: headDim) }

    /// The last position at or before `position` where a stream's seals fall (sinks aside, every
    /// `group` keys): a cache rolled back there continues as a fresh one (`Session.rollbackPoint`).
    static func sealBoundary(atOrBefore position: Int, pinned: Int) -> Int {
        position <= pinned ? position : pinned + (position - pinned) / group * group
    }

    private func gid(_ slot: Int) -> UInt32 {
        UnsafeRawPointer(kq + slot * keyRowBytes + headDim / 2).loadUnaligned(as: UInt32.self).littleEndian
    }

    private func setGid(_ slot: Int, _ g: UInt32) {
        UnsafeMutableRawPointer(kq + slot * keyRowBytes + headDim / 2).storeBytes(of: g.littleEndian, as: UInt32.self)
    }

    private func newGroup() -> UInt32 {
        if let g = freeGroups.popLast() { return g }
        if groupsIssued == groupCapacity {
            let grown = groupCapacity + max(1, groupCapacity / 8)
            let p = UnsafeMutablePointer<UInt16>.allocate(capacity: grown * 2 * headDim)
            p.update(from: params, count: groupCapacity * 2 * headDim)
            params.deallocate()
            (params, groupCapacity) = (p, grown)
        }
        groupsIssued += 1
        return UInt32(groupsIssued - 1)
    }

    func store(slot: Int, key k: UnsafePointer<Float>, value v: UnsafePointer<Float>, position: Int) {
        value.store(v, into: vq + slot * valueRowBytes)
        let i = position < pinned ? position : pinned + pendingCount
        sk_f32_to_f16_n(k, pending + i * headDim, headDim)
        setGid(slot, SK_KIVI_PENDING | UInt32(i))
        guard position >= pinned else { return }
        pendingCount += 1
        if pendingCount == Self.group { seal(last: slot) }
    }

    /// Seals the surviving pending keys (the newest slots, ending at `last`, after any sink) into one group.
    private func seal(last: Int) {
        var first = last
        while first > 0 && gid(first - 1) & SK_KIVI_PENDING != 0 && Int(gid(first - 1) & ~SK_KIVI_PENDING) >= pinned { first -= 1 }
        let hd = headDim, slots = Array(first...last)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: slots.count * hd) { rows in
            for (i, j) in slots.enumerated() {
                sk_f16_to_f32_n(pending + Int(gid(j) & ~SK_KIVI_PENDING) * hd, rows.baseAddress! + i * hd, hd)
            }
            sealRows(rows.baseAddress!, slots: slots)
        }
        pendingCount = 0
    }

    /// Quantizes `rows` (one key per slot of `slots`) as one new group and writes the slots' rows.
    private func sealRows(_ rows: UnsafePointer<Float>, slots: [Int]) {
        let hd = headDim, g = newGroup()
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: slots.count * hd / 2) { codes in
            sk_kivi_seal(rows, Int32(slots.count), Int32(hd), params + Int(g) * 2 * hd, codes.baseAddress!)
            for (i, j) in slots.enumerated() {
                (kq + j * keyRowBytes).update(from: codes.baseAddress! + i * hd / 2, count: hd / 2)
                setGid(j, g)
            }
        }
    }

    /// Moves the kept slots to the front, frees the groups no kept slot refers to, and seals the
    /// slots of groups thinned to half or less again, together (policies that keep scattered
    /// slots, H2O's heavy hitters, would otherwise hold a group's scales for one or two slots).
    override func compact(keep: [Int]) {
        super.compact(keep: keep)
        let n = keep.count, hd = headDim
        var members = [Int](repeating: 0, count: groupsIssued)
        for j in 0..<n {
            let g = gid(j)
            if g & SK_KIVI_PENDING == 0 { members[Int(g)] += 1 }
        }
        let sparse = members.map { $0 > 0 && $0 <= Self.group / 2 }
        let merged = sparse.filter { $0 }.count >= 2 ? (0..<n).filter { gid($0) & SK_KIVI_PENDING == 0 && sparse[Int(gid($0))] } : []
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(1, merged.count * hd)) { rows in
            // their keys as they read now, before their groups' scales are freed and reused
            for (i, j) in merged.enumerated() { sk_kivi_dequantize(kq + j * keyRowBytes, params, pending, rows.baseAddress! + i * hd, Int32(hd)) }
            freeGroups = (0..<groupsIssued).filter { members[$0] == 0 || sparse[$0] && !merged.isEmpty }.map(UInt32.init)
            for start in stride(from: 0, to: merged.count, by: Self.group) {
                let part = merged[start..<min(start + Self.group, merged.count)]
                sealRows(rows.baseAddress! + start * hd, slots: Array(part))
            }
        }
    }

    /// A roll back keeps the oldest slots: the unsealed keys kept (the oldest ones, indices from
    /// pinned on) count as the stores since the last seal, so a roll back to a group boundary
    /// seals the next 32 as a fresh stream would (`Session.rollbackPoint`).
    func truncate(count: Int) {
        compact(keep: Array(0..<count))
        pendingCount = (0..<count).filter { gid($0) & SK_KIVI_PENDING != 0 && Int(gid($0) & ~SK_KIVI_PENDING) >= pinned }.count
    }

    func reset() {
        pendingCount = 0
        groupsIssued = 0
        freeGroups.removeAll(keepingCapacity: true)
    }

    func scores(_ q: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int, scale: Float, into out: UnsafeMutablePointer<Float>) {
        slots.withMemoryRebound(to: CLong.self, capacity: count) { s in
            sk_kivi_scores(kq, keyRowBytes, params, pending, s, Int32(count), q, scale, out, Int32(headDim))
        }
    }

    // GQA: the group's heads share each row's widened codes (kv_kivi.c); elsewhere head by head.
    func scoresGroup(_ q: UnsafePointer<Float>, heads: Int, slots: UnsafePointer<Int>, count: Int, scale: Float,
                     into out: UnsafeMutablePointer<Float>, stride: Int) {
        let done = slots.withMemoryRebound(to: CLong.self, capacity: count) { s in
            sk_kivi_scores_group(kq, keyRowBytes, params, pending, s, Int32(count), q, Int32(heads), scale, out, stride, Int32(headDim))
        }
        if done == 0 { scoresPerHead(q, heads: heads, slots: slots, count: count, scale: scale, into: out, stride: stride) }
    }

    func accumulate(into out: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>, slots: UnsafePointer<Int>, count: Int) {
        slots.withMemoryRebound(to: CLong.self, capacity: count) { s in
            value.accumulate(into: out, weights: weights, rows: vq, rowBytes: valueRowBytes, slots: s, count: count)
        }
    }

    func f32Rows(count: Int, scratch: UnsafeMutablePointer<Float>) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        f32RowsRead(count: count, scratch: scratch)
    }

    func read(slot: Int, key k: UnsafeMutablePointer<Float>, value v: UnsafeMutablePointer<Float>) {
        sk_kivi_dequantize(kq + slot * keyRowBytes, params, pending, k, Int32(headDim))
        value.read(vq + slot * valueRowBytes, into: v)
    }
}
