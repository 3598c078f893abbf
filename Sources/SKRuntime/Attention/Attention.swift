#if canImport(Glibc)
import Glibc
#endif
import SKKernels

/// Attention of a chunk's queries over what the cache holds and the mask allows: causal, plus
/// SF-Attn's segments and sinks when set. GQA: query head h reads KV head h / (H / Hkv).
/// Positions: absolute (keys as cached), "cache" (re-numbered by slot, StreamingLLM), or auto:
/// absolute while positions stay within the trained context, cache beyond. Keys and values are
/// read through the cache's `KVStorage`; the policy's evictor gets the weights if it asks.
extension Session {
    /// `out` (n, heads·headDim) for the queries `q` (n, heads·headDim) at positions start..<start+n.
    func attend(layer l: Int, q: UnsafePointer<Float>, n: Int, start: Int, out: UnsafeMutablePointer<Float>) {
        let c = model.config, hd = c.headDim
        let observes = evictor.observesAttention
        let trained = c.trainedContext, mode = attention.positions
        let caches = cache.heads[l], cap = cache.capacity
        // A cache holding exactly positions 0..<count (nothing evicted: slot = position) makes
        // "cache" positions the same as absolute ones: no rotation at all.
        let identity = caches.allSatisfy { $0.count == 0 || ($0.positions[0] == 0 && $0.positions[$0.count - 1] == $0.count - 1) }
        let usesCache: (Int) -> Bool = { pos in !identity && (mode == .cache || (mode == .auto && pos >= trained)) }
        // "cache" positions: each key moves from its absolute position to its slot once per step
        // and KV head (shared by the group's query heads and the chunk's queries), into scratch.
        let anyCache = usesCache(start + n - 1)
        // Queries the evictor watches go one at a time; the rest of a chunk through sgemm (SnapKV
        // watches only a chunk's last queries).
        let watched = observes ? min(n, evictor.observedQueries ?? n) : 0
        let blocked = n - watched >= 2
        // f32 rows (the storage's own, or an f16 cache decoded) where sgemm or the rotation needs them.
        if blocked || anyCache { loadF32Rows(layer: l) }
        if anyCache {
            if deltaTable?.invFreq != rope.invFreq { deltaTable = RopeDeltaTable(invFreq: rope.invFreq) }
            let table = deltaTable!, most = caches.map(\.count).max() ?? 0, rot = state.rotatedKeys, rows = state.kvPointers
            parallelFor(c.numKVHeads * most, threads: threads) { range in
                for item in range {
                    let kh = item / most, j = item % most, hc = caches[kh]
                    guard j < hc.count else { continue }
                    table.rotate(rows[kh].keys + j * hd, to: rot + (kh * cap + j) * hd, by: j - hc.positions[j])
                }
            }
        }
        if blocked {
            attendBlocked(layer: l, q: q, n: n - watched, start: start, after: watched, usesCache: usesCache, out: out)
            if watched > 0 {
                let first = n - watched, qd = c.qDim
                attendDecode(layer: l, q: q + first * qd, n: watched, start: start + first, usesCache: usesCache, out: out + first * qd)
            }
        } else {
            attendDecode(layer: l, q: q, n: n, start: start, usesCache: usesCache, out: out)
        }
    }

    /// Each KV head's keys and values of layer `l` as f32 rows into `state.kvPointers`, heads
    /// spread over the workers.
    func loadF32Rows(layer l: Int) {
        let caches = cache.heads[l], st = state, ptrs = state.kvPointers
        parallelFor(caches.count, threads: cache.dtype == .f32 ? 1 : threads) { r in
            for kh in r { ptrs[kh] = caches[kh].storage.f32Rows(count: caches[kh].count, scratch: st.kvRows(head: kh)) }
        }
    }

    /// One query (or a few, or with the evictor observing) at a time: dot products over the
    /// allowed slots, softmax, weighted sum of values. The (token, query head) pairs are split
    /// into contiguous, even ranges over the workers; without SF-Attn every query head of a KV
    /// group sees the same slots, so within a range each run of heads that share a KV head goes
    /// through the storage's group calls (each key and value row decoded once per run, each
    /// head's result bit for bit the per-head one). SmolLM2's 9 heads over 3 KV heads on 2
    /// workers: runs of 3 + 2 and 1 + 3 heads. With SF-Attn (whose heads differ in their
    /// segments) and under "cache" positions, head by head. When the evictor observes, whole KV
    /// heads (each head's observations come from one worker, in a fixed order: deterministic at
    /// any thread count).
    func attendDecode(layer l: Int, q: UnsafePointer<Float>, n: Int, start: Int, usesCache: (Int) -> Bool, out: UnsafeMutablePointer<Float>) {
        let c = model.config, hd = c.headDim, qd = c.qDim, group = c.numHeads / c.numKVHeads
        let scale = c.attentionScale, softcap = c.attnSoftcap
        let kern = kernels, sf = attention.sf, observes = evictor.observesAttention, evictor = self.evictor
        let caches = cache.heads[l], cap = cache.capacity, st = state, table = deltaTable
        let window = c.slidingWindow(layer: l)
        let h = c.numHeads
        let items = observes ? c.numKVHeads : n * h
        let t = max(1, min(threads, items))
        parallelFor(t, threads: t) { workers in
            for worker in workers {
                let scores = st.decodeScores[worker], weights = st.decodeWeights[worker]
                let slots = st.decodeSlots[worker], qs = st.decodeQuery[worker]
                // This worker's items p..<hi: observing, KV head p for every token; otherwise
                // (token, head) pairs, taken as runs of heads within one token.
                var p = items * worker / t
                let hi = items * (worker + 1) / t
                while p < hi {
                    let tokens: Range<Int>, span: Range<Int>
                    if observes {
                        (tokens, span) = (0..<n, (p * group)..<((p + 1) * group))
                        p += 1
                    } else {   // up to the end of this token's heads
                        let token = p / h, end = min(hi, (token + 1) * h)
                        (tokens, span) = (token..<(token + 1), (p % h)..<(p % h + end - p))
                        p = end
                    }
                    for i in tokens {
                        let pos = start + i, useCache = usesCache(pos)
                        let oldest = window.map { pos - $0 + 1 } ?? Int.min  // sliding window
                        // The slots each head may read (the same for a whole group without SF-Attn).
                        func allowed(_ head: Int) -> Int {
                            var m = 0
                            caches[head / group].positions.withUnsafeBufferPointer { ps in
                                if sf == nil && window == nil {
                                    // every slot up to the query's position: a prefix
                                    m = slotsUpTo(pos, ps, ps.count)
                                    for j in 0..<m { slots[j] = j }
                                    return
                                }
                                for j in 0..<ps.count {
                                    let kp = ps[j]
                                    if kp > pos { break }  // slots are in position order
                                    if kp < oldest { continue }
                                    if let sf, !sf.allowed(head: head, query: pos, key: kp) { continue }
                                    slots[m] = j
                                    m += 1
                                }
                            }
                            return m
                        }
                        // softmax of head h's scores (row h of the scratch) into its weights row
                        func softmax(_ row: Int, _ m: Int) {
                            let sc = scores + row * cap, w = weights + row * cap
                            if let limit = softcap { for s in 0..<m { sc[s] = limit * tanh(sc[s] / limit) } }
                            let mx = maxOf(sc, m)
                            let sum = kern.exp_shift_sum(sc, Int32(m), mx)
                            for s in 0..<m { w[s] = sc[s] / sum }
                        }
                        if sf == nil && !useCache {
                            // the span's heads in runs that share a KV head
                            var first = span.lowerBound
                            while first < span.upperBound {
                                let kh = first / group, hc = caches[kh], g = min(span.upperBound, (kh + 1) * group) - first
                                let m = allowed(first)
                                let qv = q + i * qd + first * hd, o = out + i * qd + first * hd
                                hc.storage.scoresGroup(qv, heads: g, slots: slots, count: m, scale: scale, into: scores, stride: cap)
                                for r in 0..<g { softmax(r, m) }
                                for d in 0..<(g * hd) { o[d] = 0 }
                                hc.storage.accumulateGroup(into: o, heads: g, weights: weights, stride: cap, slots: slots, count: m)
                                if observes {
                                    for r in 0..<g { evictor.observe(layer: l, kvHead: kh, query: pos, slots: slots, weights: weights + r * cap, count: m) }
                                }
                                first += g
                            }
                            continue
                        }
                        for head in span {
                            let kh = head / group, hc = caches[kh]
                            let m = allowed(head)
                            let qv = q + i * qd + head * hd
                            if useCache {
                                // the query sits in its own slot: the chunk's tokens are the last n
                                table!.rotate(qv, to: qs, by: (hc.count - n + i) - pos)
                                let keys = st.rotatedKeys + kh * cap * hd
                                for s in 0..<m { scores[s] = kern.dot_f32(keys + slots[s] * hd, qs, Int32(hd)) * scale }
                            } else {
                                hc.storage.scores(qv, slots: slots, count: m, scale: scale, into: scores)
                            }
                            softmax(0, m)
                            let o = out + i * qd + head * hd
                            for d in 0..<hd { o[d] = 0 }
                            hc.storage.accumulate(into: o, weights: weights, slots: slots, count: m)
                            if observes { evictor.observe(layer: l, kvHead: kh, query: pos, slots: slots, weights: weights, count: m) }
                        }
                    }
                }
            }
        }
    }
}

/// The largest of `n` floats (−∞ for none), in eight independent chains (one chain of `max`
/// through every slot of every head was a visible share of decoding at depth).
@inline(__always) func maxOf(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var m0 = -Float.infinity, m1 = m0, m2 = m0, m3 = m0, m4 = m0, m5 = m0, m6 = m0, m7 = m0, i = 0
    while i + 8 <= n {
        m0 = p[i] > m0 ? p[i] : m0; m1 = p[i + 1] > m1 ? p[i + 1] : m1
        m2 = p[i + 2] > m2 ? p[i + 2] : m2; m3 = p[i + 3] > m3 ? p[i + 3] : m3
        m4 = p[i + 4] > m4 ? p[i + 4] : m4; m5 = p[i + 5] > m5 ? p[i + 5] : m5
        m6 = p[i + 6] > m6 ? p[i + 6] : m6; m7 = p[i + 7] > m7 ? p[i + 7] : m7
        i += 8
    }
    while i < n { m0 = p[i] > m0 ? p[i] : m0; i += 1 }
    let a = m0 > m1 ? m0 : m1, b = m2 > m3 ? m2 : m3, c = m4 > m5 ? m4 : m5, d = m6 > m7 ? m6 : m7
    let e = a > b ? a : b, f = c > d ? c : d
    return e > f ? e : f
}

/// How many of the first `n` slots hold positions ≤ `p` (slots are in position order).
@inline(__always) func slotsUpTo(_ p: Int, _ ps: UnsafeBufferPointer<Int>, _ n: Int) -> Int {
    var lo = 0, hi = n
    while lo < hi { let mid = (lo + hi) / 2; if ps[mid] <= p { lo = mid + 1 } else { hi = mid } }
    return lo
}
