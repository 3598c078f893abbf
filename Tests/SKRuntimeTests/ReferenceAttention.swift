import Foundation
@testable import SKRuntime
import SKCore
import SKFormat

/// A slow, obviously-correct reference for attention modes and cache policies: the whole model in
/// plain f32 loops, the full history of keys and values kept, and at every step an explicit
/// selection (which positions each layer's KV head still holds, tracked by simple set code written
/// from docs/ALGORITHMS.md) combined with the explicit mask, then dense softmax attention.
final class ReferenceModel {
    enum Policy {
        case full, segment, window(budget: Int), h2o(budget: Int, recent: Int?), vatp(budget: Int, recent: Int?), tova(budget: Int)
        /// SnapKV with its window and budget split (`layerBudgets`: per layer, from KVBudgetAllocation).
        case snap(budget: Int, window: Int, allocation: KVBudgetAllocation)
    }

    let c: ModelConfig
    let weights: [String: [Float]]
    let sf: SFAttention?
    let policy: Policy
    let sinks: Int
    let positions: PositionMode
    /// Keys (after RoPE) and values stored rounded to f16, as an f16 KV cache stores them.
    let halfKV: Bool
    /// Keys and values rounded as an int8 KV cache stores them (each head's vector in blocks of 32,
    /// or whole when shorter: an f16 scale max|x|/127 and codes rounded half away from zero).
    var int8KV = false
    /// …and as an int4 KV cache (scale max|x|/7, codes rounded half away from zero into [-8, 7]).
    var int4KV = false
    /// …and as a k8v4 cache: keys as int8, values as int4.
    var k8v4KV = false
    /// …and as a kivi4 cache: values as int4; keys held as f16 until 32 have been stored since
    /// the last seal, then the ones still kept sealed by `kiviSealed` (per channel over them);
    /// the first `kiviPinned` positions (the policy's sinks) stay f16.
    var kiviKV = false
    var kiviPinned = 0
    /// kivi4: per layer and KV head, the positions stored since the last seal, and each sealed
    /// position's group (any id; only who shares one matters).
    var kiviPending: [[[Int]]] = []
    var kiviGroup: [[[Int: Int]]] = []
    var kiviGroups = 0
    var keys: [[[Float]]] = []     // [layer][position] (kvDim), rotated at the absolute position
    var values: [[[Float]]] = []
    var kept: [[[Int]]]            // [layer][kvHead] kept positions, ascending
    var scores: [[[Int: Double]]]  // [layer][kvHead][position]
    /// TOVA: the newest query's weights, [layer][kvHead][position].
    var lastWeights: [[[Int: Double]]] = []
    /// SnapKV: attention from observation-window queries since the layer's last compression.
    var snapScores: [[[Int: Double]]] = []
    var layerBudgets: [Int] = []
    var position = 0
    let rope: Rope

    init(file: SKMFile, sf: SFAttention?, policy: Policy, sinks: Int, positions: PositionMode, halfKV: Bool = false) throws {
        self.halfKV = halfKV
        c = try ModelConfig(metadata: file.metadata, path: file.path)
        var w: [String: [Float]] = [:]
        for t in file.tensors {
            w[t.name] = try file.withRawBytes(t) { Dequantize.tensor($0, type: t.type, group: t.group, rows: t.rows, cols: t.cols) }
        }
        weights = w
        self.sf = sf
        self.policy = policy
        self.sinks = sinks
        self.positions = positions
        kept = Array(repeating: Array(repeating: [], count: c.numKVHeads), count: c.numLayers)
        scores = Array(repeating: Array(repeating: [:], count: c.numKVHeads), count: c.numLayers)
        lastWeights = scores
        snapScores = scores
        keys = Array(repeating: [], count: c.numLayers)
        values = keys
        rope = Rope(config: c)
    }

    func matvec(_ name: String, _ x: [Float], rows: Int) -> [Float] {
        let w = weights[name]!, cols = x.count
        var y = (0..<rows).map { r in (0..<cols).reduce(Float(0)) { $0 + w[r * cols + $1] * x[$1] } }
        if let b = weights[name.replacingOccurrences(of: ".weight", with: ".bias")] { for i in 0..<rows { y[i] += b[i] } }
        return y
    }

    func rms(_ x: [Float], _ w: [Float]) -> [Float] {
        let ss = x.reduce(Float(0)) { $0 + $1 * $1 }
        let s = 1 / (ss / Float(x.count) + c.rmsNormEps).squareRoot()
        return (0..<x.count).map { w[$0] * (x[$0] * s) }
    }

    /// The SF-Attn mask of docs/ALGORITHMS.md §2, written out again here (not SFAttention's code).
    func seg(_ p: Int, head h: Int) -> Int {
        let g = sf!.groupSize
        return h >= c.numHeads / 2 ? (p + g / 2) / g : p / g
    }
    func maskAllows(head h: Int, query p: Int, key q: Int) -> Bool {
        guard q <= p else { return false }
        guard sf != nil else { return true }
        return q < sinks || seg(q, head: h) == seg(p, head: h)
    }

    func rotated(_ v: [Float], _ delta: Int) -> [Float] {
        var r = v
        r.withUnsafeMutableBufferPointer { rope.rotate($0.baseAddress!, by: delta) }
        return r
    }

    /// Logits of every token of the step, one step = `tokens` appended together (a chunk).
    func step(_ tokens: [Int]) -> [[Float]] {
        let n = tokens.count, hd = c.headDim, group = c.numHeads / c.numKVHeads
        let start = position
        var xs: [[Float]] = tokens.map { t in Array(weights["model.embed_tokens.weight"]![(t * c.hiddenSize)..<((t + 1) * c.hiddenSize)]) }
        for l in 0..<c.numLayers {
            let p = "model.layers.\(l)."
            var qs: [[Float]] = []
            for i in 0..<n {
                let xb = rms(xs[i], weights[p + "input_layernorm.weight"]!)
                var q = matvec(p + "self_attn.q_proj.weight", xb, rows: c.qDim)
                var k = matvec(p + "self_attn.k_proj.weight", xb, rows: c.kvDim)
                q.withUnsafeMutableBufferPointer { rope.apply($0.baseAddress!, heads: c.numHeads, position: start + i) }
                k.withUnsafeMutableBufferPointer { rope.apply($0.baseAddress!, heads: c.numKVHeads, position: start + i) }
                let v = matvec(p + "self_attn.v_proj.weight", xb, rows: c.kvDim)
                keys[l].append(halfKV || kiviKV ? k.map { Float(Float16($0)) } : int8KV || k8v4KV ? int8Rounded(k, headDim: c.headDim) : int4KV ? int4Rounded(k, headDim: c.headDim) : k)
                values[l].append(halfKV ? v.map { Float(Float16($0)) } : int8KV ? int8Rounded(v, headDim: c.headDim) : int4KV || k8v4KV || kiviKV ? int4Rounded(v, headDim: c.headDim) : v)
                if kiviKV { kiviStored(layer: l, position: start + i, chunkStart: start) }
                qs.append(q)
            }
            for kh in 0..<c.numKVHeads { kept[l][kh] += (start..<(start + n)) }
            var attOut = [[Float]](repeating: [Float](repeating: 0, count: c.qDim), count: n)
            for i in 0..<n {
                let pos = start + i
                lastWeights[l] = Array(repeating: [:], count: c.numKVHeads)
                for h in 0..<c.numHeads {
                    let kh = h / group
                    let slots = kept[l][kh]
                    let useCache = positions == .cache || (positions == .auto && pos >= c.trainedContext)
                    let own = slots.lastIndex(of: pos)!
                    var q = Array(qs[i][(h * hd)..<((h + 1) * hd)])
                    if useCache { q = rotated(q, own - pos) }
                    var allowed: [(Int, Float)] = []   // (position, score)
                    for (slot, kp) in slots.enumerated() where maskAllows(head: h, query: pos, key: kp) {
                        var k = Array(keys[l][kp][(kh * hd)..<((kh + 1) * hd)])
                        if useCache { k = rotated(k, slot - kp) }
                        allowed.append((kp, zip(q, k).reduce(Float(0)) { $0 + $1.0 * $1.1 } / Float(hd).squareRoot()))
                    }
                    let mx = allowed.map(\.1).max()!
                    let e = allowed.map { exp($0.1 - mx) }
                    let sum = e.reduce(0, +)
                    for (idx, (kp, _)) in allowed.enumerated() {
                        let wgt = e[idx] / sum
                        for d in 0..<hd { attOut[i][h * hd + d] += wgt * values[l][kp][kh * hd + d] }
                        scores[l][kh][kp, default: 0] += Double(wgt)
                        lastWeights[l][kh][kp, default: 0] += Double(wgt)
                        if case .snap(_, let w, _) = policy, pos >= start + n - w { snapScores[l][kh][kp, default: 0] += Double(wgt) }
                    }
                }
            }
            let held = kept[l].map(\.count)
            if case .snap = policy { snapEvict(l) } else {
                for kh in 0..<c.numKVHeads { kept[l][kh] = evict(l, kh, next: start + n) }
            }
            if kiviKV { for kh in 0..<c.numKVHeads where kept[l][kh].count < held[kh] { kiviRegroup(layer: l, kvHead: kh) } }
            for i in 0..<n {
                let o = matvec(p + "self_attn.o_proj.weight", attOut[i], rows: c.hiddenSize)
                for d in 0..<c.hiddenSize { xs[i][d] += o[d] }
                let xb = rms(xs[i], weights[p + "post_attention_layernorm.weight"]!)
                let g = matvec(p + "mlp.gate_proj.weight", xb, rows: c.intermediateSize)
                let u = matvec(p + "mlp.up_proj.weight", xb, rows: c.intermediateSize)
                let a = (0..<g.count).map { g[$0] / (1 + exp(-g[$0])) * u[$0] }
                let dn = matvec(p + "mlp.down_proj.weight", a, rows: c.hiddenSize)
                for d in 0..<c.hiddenSize { xs[i][d] += dn[d] }
            }
        }
        position += n
        let head = weights["lm_head.weight"] ?? weights["model.embed_tokens.weight"]!
        return xs.map { x in
            let xn = rms(x, weights["model.norm.weight"]!)
            return (0..<c.vocabSize).map { r in (0..<c.hiddenSize).reduce(Float(0)) { $0 + head[r * c.hiddenSize + $1] * xn[$1] } }
        }
    }

    /// SnapKV for one layer (docs/ALGORITHMS.md): when the layer's heads hold more than B each on
    /// average, each keeps its sinks, its newest W and the best of the rest by the window queries'
    /// attention max-pooled over 7 neighbours (excluding the newest W), B − W per head on average:
    /// the same for every head (uniform, pyramid), or shared by the layer's heads after a 20% floor,
    /// at most 2(B − W) per head (adaptive).
    func snapEvict(_ l: Int) {
        guard case .snap(let b0, let w, let allocation) = policy else { return }
        let b = layerBudgets.isEmpty ? b0 : layerBudgets[l]
        let heads = c.numKVHeads
        guard kept[l].map(\.count).reduce(0, +) > heads * b else { return }
        let target = b - w
        var keepSets: [Set<Int>] = []
        var ranked: [[(pos: Int, score: Double)]] = []
        for kh in 0..<heads {
            let list = kept[l][kh]
            let older = Array(list.dropLast(w))
            var keep = Set(list.filter { $0 < sinks })
            keep.formUnion(list.suffix(w))
            keepSets.append(keep)
            var r: [(pos: Int, score: Double)] = []
            for (i, p) in older.enumerated() where p >= sinks {
                var best = -Double.infinity
                for j in max(0, i - 3)...min(older.count - 1, i + 3) { best = max(best, snapScores[l][kh][older[j], default: 0]) }
                r.append((p, best))
            }
            ranked.append(r.sorted { $0.score != $1.score ? $0.score > $1.score : $0.pos < $1.pos })
        }
        switch allocation {
        case .uniform, .pyramid:
            for kh in 0..<heads { keepSets[kh].formUnion(ranked[kh].prefix(max(0, target - keepSets[kh].count)).map(\.pos)) }
        case .adaptive:
            var left = 0
            var rest: [(kh: Int, pos: Int, score: Double)] = []
            for kh in 0..<heads {
                let share = max(0, target - keepSets[kh].count)
                let floor = min(ranked[kh].count, Int(0.2 * Double(share)))
                left += share - floor
                keepSets[kh].formUnion(ranked[kh].prefix(floor).map(\.pos))
                rest += ranked[kh].dropFirst(floor).map { (kh, $0.pos, $0.score) }
            }
            rest.sort { ($0.score, -$0.pos, -$0.kh) > ($1.score, -$1.pos, -$1.kh) }
            for item in rest where left > 0 && keepSets[item.kh].count < 2 * target {
                keepSets[item.kh].insert(item.pos)
                left -= 1
            }
        }
        for kh in 0..<heads {
            kept[l][kh] = kept[l][kh].filter { keepSets[kh].contains($0) }
            snapScores[l][kh] = [:]
        }
    }

    /// The selection, written directly from docs/ALGORITHMS.md.
    func evict(_ l: Int, _ kh: Int, next: Int) -> [Int] {
        let list = kept[l][kh]
        switch policy {
        case .full, .snap:
            return list
        case .segment:
            let group = c.numHeads / c.numKVHeads
            // a key survives if some query head of this KV head can still read it at a future position
            let heads = Array((kh * group)..<((kh + 1) * group))
            return list.filter { q in q < sinks || heads.contains { seg(q, head: $0) == seg(next, head: $0) } }
        case .window(let b):
            guard list.count > b else { return list }
            let recent = Set(list.suffix(b - sinks))
            return list.filter { $0 < sinks || recent.contains($0) }
        case .h2o(let b, let r):
            guard list.count > b else { return list }
            let recentCount = r ?? (b - sinks) / 2
            let heavy = b - sinks - recentCount
            var keep = Set(list.filter { $0 < sinks })
            keep.formUnion(list.suffix(recentCount))
            let rest = list.filter { !keep.contains($0) }.sorted {
                let a = scores[l][kh][$0, default: 0], bb = scores[l][kh][$1, default: 0]
                return a != bb ? a > bb : $0 < $1
            }
            keep.formUnion(rest.prefix(heavy))
            return list.filter { keep.contains($0) }
        case .vatp(let b, let r):
            // H2O's layout; the heavy ones by attention received per query since the slot arrived,
            // times the l1 norm of the value as stored
            guard list.count > b else { return list }
            let recentCount = r ?? (b - sinks) / 2
            var keep = Set(list.filter { $0 < sinks })
            keep.formUnion(list.suffix(recentCount))
            let hd = c.headDim
            func rank(_ p: Int) -> Double {
                let norm = values[l][p][(kh * hd)..<((kh + 1) * hd)].reduce(0.0) { $0 + Double(abs($1)) }
                return scores[l][kh][p, default: 0] / Double(next - p) * norm
            }
            let rest = list.filter { !keep.contains($0) }.sorted { rank($0) != rank($1) ? rank($0) > rank($1) : $0 < $1 }
            keep.formUnion(rest.prefix(b - sinks - recentCount))
            return list.filter { keep.contains($0) }
        case .tova(let b):
            // sinks, the newest token, then what the newest query attended to most
            guard list.count > b else { return list }
            var keep = Set(list.filter { $0 < sinks })
            keep.insert(list.last!)
            let rest = list.filter { !keep.contains($0) }.sorted {
                let a = lastWeights[l][kh][$0, default: 0], bb = lastWeights[l][kh][$1, default: 0]
                return a != bb ? a > bb : $0 < $1
            }
            keep.formUnion(rest.prefix(b - keep.count))
            return list.filter { keep.contains($0) }
        }
    }
}

extension ReferenceModel {
    /// kivi4: position `position` was stored in layer `layer`; on the 32nd store since the last
    /// seal, each KV head's pending positions still held (kept, or of the current chunk) are sealed.
    func kiviStored(layer l: Int, position: Int, chunkStart: Int) {
        if kiviPending.isEmpty {
            kiviPending = Array(repeating: Array(repeating: [], count: c.numKVHeads), count: c.numLayers)
            kiviGroup = Array(repeating: Array(repeating: [:], count: c.numKVHeads), count: c.numLayers)
        }
        guard position >= kiviPinned else { return }
        for kh in 0..<c.numKVHeads {
            kiviPending[l][kh].append(position)
            guard kiviPending[l][kh].count == 32 else { continue }
            kiviSeal(layer: l, kvHead: kh, positions: kiviPending[l][kh].filter { $0 >= chunkStart || kept[l][kh].contains($0) })
            kiviPending[l][kh] = []
        }
    }

    func kiviSeal(layer l: Int, kvHead kh: Int, positions: [Int]) {
        let hd = c.headDim, r = (kh * hd)..<((kh + 1) * hd)
        let sealed = kiviSealed(positions.map { Array(keys[l][$0][r]) })
        kiviGroups += 1
        for (i, p) in positions.enumerated() {
            keys[l][p].replaceSubrange(r, with: sealed[i])
            kiviGroup[l][kh][p] = kiviGroups
        }
    }

    /// kivi4 after an eviction: when two or more groups are down to half their size (16) or
    /// less, their kept positions, in order, are sealed again 32 at a time from their keys as held.
    func kiviRegroup(layer l: Int, kvHead kh: Int) {
        guard !kiviGroup.isEmpty else { return }
        var members: [Int: Int] = [:]
        for p in kept[l][kh] { if let g = kiviGroup[l][kh][p] { members[g, default: 0] += 1 } }
        let sparse = Set(members.filter { $0.value <= 16 }.keys)
        guard sparse.count >= 2 else { return }
        let positions = kept[l][kh].filter { kiviGroup[l][kh][$0].map(sparse.contains) ?? false }
        for start in stride(from: 0, to: positions.count, by: 32) {
            kiviSeal(layer: l, kvHead: kh, positions: Array(positions[start..<min(start + 32, positions.count)]))
        }
    }
}

/// KIVI's int4 keys, written out independently of kv_kivi.c: per channel j over the group's keys,
/// d = f16((max − min) / 15), m = f16(min), codes round((x − m) / d) half away from zero clamped
/// to [0, 15] (0 when d is 0), x ≈ m + d · code.
func kiviSealed(_ rows: [[Float]]) -> [[Float]] {
    var out = rows
    for j in 0..<(rows.first?.count ?? 0) {
        let col = rows.map { $0[j] }
        let d = Float(Float16((col.max()! - col.min()!) / 15)), m = Float(Float16(col.min()!))
        let inv: Float = d > 0 ? 1 / d : 0
        for i in rows.indices { out[i][j] = m + d * min(15, max(0, ((rows[i][j] - m) * inv).rounded())) }
    }
    return out
}

/// The int8 and int4 KV rules, written out independently of kv_int8.c: each head's vector in
/// blocks of 32 (or whole when shorter), d = f16(max|x| / qmax), codes rounded half away from zero
/// into [qmin, qmax].
func blockRounded(_ x: [Float], headDim: Int, qmin: Float, qmax: Float) -> [Float] {
    let block = headDim % 32 == 0 ? 32 : headDim
    var out = x
    for b in stride(from: 0, to: x.count, by: block) {
        let amax = x[b..<(b + block)].map(abs).max()!
        let d = Float(Float16(amax / qmax))
        let inv: Float = d > 0 ? 1 / d : 0
        for i in b..<(b + block) { out[i] = d * min(qmax, max(qmin, (x[i] * inv).rounded())) }
    }
    return out
}
func int8Rounded(_ x: [Float], headDim: Int) -> [Float] { blockRounded(x, headDim: headDim, qmin: -127, qmax: 127) }
/// int4 rows are stored Walsh-Hadamard rotated when the head is a power of two: each head's vector
/// times the orthonormal Sylvester matrix H[i][j] = (−1)^popcount(i & j) / √n, rounded, and rotated
/// back (H is its own inverse).
func int4Rounded(_ x: [Float], headDim: Int) -> [Float] {
    guard headDim >= 8, headDim & (headDim - 1) == 0 else { return blockRounded(x, headDim: headDim, qmin: -8, qmax: 7) }
    func hadamard(_ v: ArraySlice<Float>) -> [Float] {
        let n = v.count, s = 1 / Float(n).squareRoot(), b = v.startIndex
        return (0..<n).map { i in (0..<n).reduce(Float(0)) { $0 + ((i & $1).nonzeroBitCount % 2 == 0 ? 1 : -1) * v[b + $1] } * s }
    }
    var out: [Float] = []
    for h in stride(from: 0, to: x.count, by: headDim) {
        let rounded = blockRounded(hadamard(x[h..<(h + headDim)]), headDim: headDim, qmin: -8, qmax: 7)
        out += hadamard(rounded[...])
    }
    return out
}
