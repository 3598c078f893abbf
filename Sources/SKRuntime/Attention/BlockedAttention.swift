#if canImport(Glibc)
import Glibc
#endif
import COpenBLAS
import SKKernels

extension Session {
    /// Prefill attention (several queries, no observing evictor) with sgemm: for each query head
    /// and block of 64 queries, S = Q·Kᵀ over the head's cache slots, the mask (causal, SF-Attn),
    /// softmax, then O = P·V. Work items are (head, block) pairs in head-major order, so each
    /// worker's contiguous share holds whole heads: balanced under the causal mask. Keys and values
    /// are the f32 rows `loadF32Rows` put in `state.kvPointers`.
    /// `usesCache(position)`: whether that query uses "cache" positions (decided by `attend`).
    /// `after`: the step's tokens cached after these `n` (attended to separately).
    func attendBlocked(layer l: Int, q: UnsafePointer<Float>, n: Int, start: Int, after: Int = 0, usesCache: (Int) -> Bool, out: UnsafeMutablePointer<Float>) {
        let c = model.config, hd = c.headDim, qd = c.qDim, group = c.numHeads / c.numKVHeads
        let scale = c.attentionScale, softcap = c.attnSoftcap
        let sf = attention.sf, kern = kernels, window = c.slidingWindow(layer: l)
        let caches = cache.heads[l], cap = cache.capacity
        let qb = 64, blocks = (n + qb - 1) / qb, items = c.numHeads * blocks
        let most = caches.map(\.count).max() ?? 0
        let t = max(1, min(threads, items))
        state.reserveBlock(floats: qb * most + qb * hd)
        let st = state, kv = state.kvPointers, table = deltaTable
        parallelFor(t, threads: t) { workers in
            for worker in workers {
                let sBuf = st.blockScratch[worker], qBuf = st.blockScratch[worker] + qb * most
                for item in (items * worker / t)..<(items * (worker + 1) / t) {
                    let head = item / blocks, b = item % blocks, kh = head / group, hc = caches[kh]
                    let i0 = b * qb, rows = min(qb, n - i0)
                    // causal: slots (in position order) past the block's last query are never read
                    let last = start + i0 + rows - 1
                    let m = hc.positions.withUnsafeBufferPointer { slotsUpTo(last, $0, $0.count) }
                    // queries of this block; in cache position mode every query moves to its
                    // own slot (the step's tokens are the last n + after slots: one shared delta)
                    // (a block straddling the trained context under auto keeps its
                    // absolute rows: delta 0)
                    let cacheMode = usesCache(start + i0 + rows - 1)
                    if cacheMode {
                        for i in i0..<(i0 + rows) {
                            let delta = usesCache(start + i) ? (hc.count - n - after) - start : 0
                            table!.rotate(q + i * qd + head * hd, to: qBuf + (i - i0) * hd, by: delta)
                        }
                    } else {
                        for i in 0..<rows { (qBuf + i * hd).update(from: q + (i0 + i) * qd + head * hd, count: hd) }
                    }
                    let stored = kv[kh].keys
                    let keys = cacheMode ? UnsafePointer(st.rotatedKeys + kh * cap * hd) : stored
                    if cacheMode && !usesCache(start + i0) {
                        // mixed block: absolute rows read stored keys, cache rows rotated ones
                        for i in 0..<rows {
                            let k = usesCache(start + i0 + i) ? keys : stored
                            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(hd), scale, k, Int32(hd), qBuf + i * hd, 1, 0, sBuf + i * m, 1)
                        }
                    } else {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(m), Int32(hd), scale, qBuf, Int32(hd), keys, Int32(hd), 0, sBuf, Int32(m))
                    }
                    if let sc = softcap { for j in 0..<(rows * m) { sBuf[j] = sc * tanh(sBuf[j] / sc) } }
                    hc.positions.withUnsafeBufferPointer { ps in
                        for i in 0..<rows {
                            let pos = start + i0 + i, row = sBuf + i * m
                            var mx = -Float.infinity
                            if window == nil {
                                // Causal, and SF-Attn's sinks plus the query's own segment: the
                                // allowed slots are at most two runs (positions ascend), [0, sinkEnd)
                                // and [from, cut), the rest weight 0 without an exponential. Causal
                                // alone is one run (sinkEnd = from = cut).
                                let cut = slotsUpTo(pos, ps, m)
                                var sinkEnd = cut, from = cut
                                if let sf {
                                    let shifted = sf.isShifted(head: head), g = sf.groupSize
                                    let segStart = sf.segment(pos, shifted: shifted) * g - (shifted ? g / 2 : 0)
                                    sinkEnd = min(slotsUpTo(sf.sinks - 1, ps, m), cut)
                                    from = max(sinkEnd, min(slotsUpTo(segStart - 1, ps, m), cut))
                                }
                                for j in sinkEnd..<from { row[j] = 0 }
                                for j in cut..<m { row[j] = 0 }
                                let mx = max(maxOf(row, sinkEnd), maxOf(row + from, cut - from))
                                let inv = 1 / (kern.exp_shift_sum(row, Int32(sinkEnd), mx) + kern.exp_shift_sum(row + from, Int32(cut - from), mx))
                                for j in 0..<sinkEnd { row[j] *= inv }
                                for j in from..<cut { row[j] *= inv }
                                continue
                            }
                            if let sf {
                                for j in 0..<m {
                                    let kp = ps[j]
                                    if kp > pos || !sf.allowed(head: head, query: pos, key: kp) { row[j] = -.infinity } else { mx = max(mx, row[j]) }
                                }
                            } else if let w = window {
                                // sliding window: keys pos-w+1...pos
                                for j in 0..<m {
                                    if ps[j] > pos || ps[j] <= pos - w { row[j] = -.infinity } else { mx = max(mx, row[j]) }
                                }
                            }
                            let inv = 1 / kern.exp_shift_sum(row, Int32(m), mx)
                            for j in 0..<m { row[j] *= inv }
                        }
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(hd), Int32(m), 1, sBuf, Int32(m), kv[kh].values, Int32(hd), 0,
                                out + i0 * qd + head * hd, Int32(qd))
                }
            }
        }
    }
}
