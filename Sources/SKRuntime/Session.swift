import Foundation
import SKCore
import SKKernels
import COpenBLAS

/// One inference stream over a model: the KV cache and the scratch buffers of the forward pass.
/// `forward` appends tokens at the next positions and returns the logits asked for.
public final class Session {
    public let model: LlamaModel
    public let cache: KVCache
    public let threads: Int
    var rope: Rope
    let matmul: MatMul
    let kernels: sk_kernel_table
    /// Scratch for the "cache" position mode: keys rotated to their slots, (kvHeads, capacity, headDim).
    var rotatedKeys: [Float] = []
    var deltaTable: RopeDeltaTable?
    /// Per-worker scratch of the blocked prefill attention (scores and queries of one block).
    var attnScratch: [UnsafeMutablePointer<Float>] = []
    var attnScratchFloats = 0

    public let attention: AttentionConfig
    /// Positions a full cache can hold (nil: a bounded policy streams any length).
    public let context: Int?

    /// - Parameters:
    ///   - context: the KV cache size for a full cache; with a bounded policy (or SF-Attn's
    ///     segment cache) the cache holds the policy's budget plus one prefill chunk instead.
    public init(model: LlamaModel, context: Int, threads: Int, attention: AttentionConfig = .full) throws {
        let c = model.config
        guard context > 0 else { throw SinkKitError(.invalidArgument, "context must be positive") }
        if let w = c.slidingWindow, attention.policy.budget != nil || context > w {
            // Within the window, sliding-window attention is full attention; beyond it, the
            // windowed mask would be needed, which this runtime does not implement yet.
            throw SinkKitError(.invalidArgument, "this model uses sliding-window attention (sliding_window \(w)), which SinkKit does not implement yet: contexts are limited to \(w) tokens with a full cache (asked: \(context) tokens, \(attention.policy.name) cache)")
        }
        self.model = model
        self.threads = max(1, threads)
        self.attention = attention
        let capacity: Int
        if let b = attention.policy.budget {
            capacity = min(b, context) + attention.chunk
            self.context = nil
        } else {
            capacity = context
            self.context = context
        }
        cache = KVCache(layers: c.numLayers, kvHeads: c.numKVHeads, headDim: c.headDim, capacity: capacity, dtype: attention.kvDType)
        rope = Rope(config: c)
        matmul = MatMul(threads: self.threads)
        kernels = sk_kernels_best().pointee
    }

    deinit {
        for p in attnScratch { p.deallocate() }
        kvF32?.deallocate()
    }

    /// An f16 cache's keys and values of one layer, decoded to f32 for attention (reused by every
    /// layer: one layer's worth of f32, not the cache's).
    var kvF32: UnsafeMutablePointer<Float>?

    /// f32 keys and values of each KV head of layer `l`: the cache itself (f32), or the layer
    /// decoded into `kvF32` (f16), heads spread over the workers.
    func keysAndValues(layer l: Int) -> [(keys: UnsafePointer<Float>, values: UnsafePointer<Float>)] {
        let caches = cache.heads[l]
        guard cache.dtype == .f16 else { return caches.map { ($0.keys32, $0.values32) } }
        let per = cache.capacity * model.config.headDim
        if kvF32 == nil { kvF32 = .allocate(capacity: 2 * caches.count * per) }
        let base = kvF32!
        parallelFor(caches.count, threads: threads) { r in
            for kh in r { caches[kh].decode(keys: base + 2 * kh * per, values: base + (2 * kh + 1) * per) }
        }
        return (0..<caches.count).map { (UnsafePointer(base + 2 * $0 * per), UnsafePointer(base + (2 * $0 + 1) * per)) }
    }

    public var position: Int { cache.position }
    public var kernelName: String { String(cString: kernels.name) }

    public func reset() { cache.reset() }

    /// Runs `tokens` through the model at positions `position ..< position + n`, in prefill
    /// chunks when the cache is bounded (the policy evicts after each chunk).
    /// - Parameter logitsFor: indices into `tokens` whose logits to return (row-major, vocab each).
    public func forward(_ tokens: [Int], logitsFor: [Int]) throws -> [Float] {
        let chunk = context == nil ? attention.chunk : max(1, tokens.count)
        if tokens.count <= chunk { return try forwardChunk(tokens, logitsFor: logitsFor) }
        let vocab = model.config.vocabSize
        var byRow: [Int: ArraySlice<Float>] = [:]
        var start = 0
        while start < tokens.count {
            let end = min(tokens.count, start + chunk)
            let rows = logitsFor.filter { $0 >= start && $0 < end }
            let l = try forwardChunk(Array(tokens[start..<end]), logitsFor: rows.map { $0 - start })
            for (k, r) in rows.enumerated() { byRow[r] = l[(k * vocab)..<((k + 1) * vocab)] }
            start = end
        }
        return logitsFor.flatMap { byRow[$0]! }
    }

    func forwardChunk(_ tokens: [Int], logitsFor: [Int]) throws -> [Float] {
        let c = model.config, n = tokens.count
        guard n > 0 else { return [] }
        if let ctx = context, cache.position + n > ctx {
            throw SinkKitError(.invalidArgument, "context full: \(cache.position) + \(n) tokens exceed the \(ctx)-token context (a bounded --kv policy streams any length)")
        }
        guard cache.maxSlots + n <= cache.capacity else {
            throw SinkKitError(.invalidArgument, "KV cache full: \(cache.maxSlots) + \(n) slots exceed its \(cache.capacity) (prefill chunks must not exceed the chunk size)")
        }
        for t in tokens where t < 0 || t >= c.vocabSize {
            throw SinkKitError(.invalidArgument, "token id \(t) is outside the vocabulary (\(c.vocabSize))")
        }
        let start = cache.position
        rope.adapt(toSequenceLength: start + n)
        let cosSin = rope.cosSin(start: start, count: n)       // shared by every layer
        let h = c.hiddenSize, qd = c.qDim, kvd = c.kvDim, inter = c.intermediateSize
        var x = [Float](repeating: 0, count: n * h)            // (n, hidden) residual stream
        var xb = [Float](repeating: 0, count: n * h)           // (n, hidden) normed
        var q = [Float](repeating: 0, count: n * qd)           // (n, heads·headDim)
        var k = [Float](repeating: 0, count: n * kvd)          // (n, kvHeads·headDim)
        var v = [Float](repeating: 0, count: n * kvd)
        var att = [Float](repeating: 0, count: n * qd)         // (n, heads·headDim)
        var tmp = [Float](repeating: 0, count: n * h)          // (n, hidden)
        var g = [Float](repeating: 0, count: n * inter)        // (n, intermediate)
        var u = [Float](repeating: 0, count: n * inter)

        x.withUnsafeMutableBufferPointer { xp in
            for (i, t) in tokens.enumerated() { model.embedding.dequantizeRow(t, into: xp.baseAddress! + i * h) }
        }
        for (l, layer) in model.layers.enumerated() {
            rmsNorm(x, layer.inputNorm, into: &xb, rows: n)
            xb.withUnsafeBufferPointer { xbp in
                q.withUnsafeMutableBufferPointer { matmul(layer.q, xbp.baseAddress!, n: n, out: $0.baseAddress!) }
                k.withUnsafeMutableBufferPointer { matmul(layer.k, xbp.baseAddress!, n: n, out: $0.baseAddress!) }
                v.withUnsafeMutableBufferPointer { matmul(layer.v, xbp.baseAddress!, n: n, out: $0.baseAddress!) }
            }
            if let b = layer.qBias { addBias(&q, b, rows: n) }
            if let b = layer.kBias { addBias(&k, b, rows: n) }
            if let b = layer.vBias { addBias(&v, b, rows: n) }
            q.withUnsafeMutableBufferPointer { qp in
                k.withUnsafeMutableBufferPointer { kp in
                    cosSin.withUnsafeBufferPointer { csp in
                        let qb = qp.baseAddress!, kb = kp.baseAddress!, cb = csp.baseAddress!, rope = rope
                        parallelFor(n, threads: n >= 16 ? threads : 1) { rows in
                            for i in rows {
                                rope.apply(qb + i * qd, heads: c.numHeads, cosSin: cb + i * c.headDim)
                                rope.apply(kb + i * kvd, heads: c.numKVHeads, cosSin: cb + i * c.headDim)
                            }
                        }
                    }
                }
            }
            // Append to the cache (keys rotated at their absolute position).
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { vp in
                    for i in 0..<n {
                        for kh in 0..<c.numKVHeads {
                            let o = i * kvd + kh * c.headDim
                            cache.heads[l][kh].append(key: kp.baseAddress! + o, value: vp.baseAddress! + o, position: start + i)
                        }
                    }
                }
            }
            attend(layer: l, q: q, n: n, start: start, out: &att)
            // The policy evicts after attention (H2O scores include this step).
            for kh in 0..<c.numKVHeads {
                let hc = cache.heads[l][kh]
                let keep = attention.policy.keep(hc, kvHead: kh, nextPosition: start + n)
                if keep.count < hc.count { hc.compact(keep: keep) }
            }
            att.withUnsafeBufferPointer { ap in
                tmp.withUnsafeMutableBufferPointer { matmul(layer.o, ap.baseAddress!, n: n, out: $0.baseAddress!) }
            }
            if let b = layer.oBias { addBias(&tmp, b, rows: n) }
            addInPlace(&x, tmp)
            rmsNorm(x, layer.postNorm, into: &xb, rows: n)
            xb.withUnsafeBufferPointer { xbp in
                g.withUnsafeMutableBufferPointer { matmul(layer.gate, xbp.baseAddress!, n: n, out: $0.baseAddress!) }
                u.withUnsafeMutableBufferPointer { matmul(layer.up, xbp.baseAddress!, n: n, out: $0.baseAddress!) }
            }
            if let b = layer.gateBias { addBias(&g, b, rows: n) }
            if let b = layer.upBias { addBias(&u, b, rows: n) }
            swiglu(&g, u, rows: n, width: inter)
            g.withUnsafeBufferPointer { gp in
                tmp.withUnsafeMutableBufferPointer { matmul(layer.down, gp.baseAddress!, n: n, out: $0.baseAddress!) }
            }
            if let b = layer.downBias { addBias(&tmp, b, rows: n) }
            addInPlace(&x, tmp)
        }
        cache.position += n

        // Logits for the requested rows only, a few rows at a time.
        let vocab = c.vocabSize
        var logits = [Float](repeating: 0, count: logitsFor.count * vocab)
        var chunkStart = 0
        while chunkStart < logitsFor.count {
            let rows = Array(logitsFor[chunkStart..<min(logitsFor.count, chunkStart + 32)])
            var sel = [Float](repeating: 0, count: rows.count * h)
            for (j, r) in rows.enumerated() { for d in 0..<h { sel[j * h + d] = x[r * h + d] } }
            var normed = [Float](repeating: 0, count: rows.count * h)
            rmsNorm(sel, model.finalNorm, into: &normed, rows: rows.count)
            normed.withUnsafeBufferPointer { np in
                logits.withUnsafeMutableBufferPointer { lp in
                    matmul(model.head, np.baseAddress!, n: rows.count, out: lp.baseAddress! + chunkStart * vocab)
                }
            }
            chunkStart += rows.count
        }
        return logits
    }

    /// RMSNorm of each row, rows spread over the workers (each row's sums in one order).
    func rmsNorm(_ x: [Float], _ w: [Float], into out: inout [Float], rows: Int) {
        let h = w.count, eps = model.config.rmsNormEps
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBufferPointer { op in
                    let xb = xp.baseAddress!, wb = wp.baseAddress!, ob = op.baseAddress!
                    parallelFor(rows, threads: rows >= 16 ? threads : 1) { rs in
                        for r in rs {
                            let xr = xb + r * h, or = ob + r * h
                            var ss: Float = 0
                            for d in 0..<h { ss += xr[d] * xr[d] }
                            let scale = 1 / (ss / Float(h) + eps).squareRoot()
                            for d in 0..<h { or[d] = wb[d] * (xr[d] * scale) }
                        }
                    }
                }
            }
        }
    }

    /// x += y, elementwise.
    func addInPlace(_ x: inout [Float], _ y: [Float]) {
        x.withUnsafeMutableBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                for i in 0..<xp.count { xp[i] += yp[i] }
            }
        }
    }

    /// SwiGLU in place, `g = silu(g) · u`, whole rows per worker (the same arithmetic for every
    /// element whatever the split).
    func swiglu(_ g: inout [Float], _ u: [Float], rows: Int, width: Int) {
        let kern = kernels
        g.withUnsafeMutableBufferPointer { gp in
            u.withUnsafeBufferPointer { up in
                let gb = gp.baseAddress!, ub = up.baseAddress!
                parallelFor(rows, threads: threads) { r in
                    kern.silu_mul(gb + r.lowerBound * width, ub + r.lowerBound * width, Int32(r.count * width))
                }
            }
        }
    }

    func addBias(_ y: inout [Float], _ b: [Float], rows: Int) {
        for r in 0..<rows { for d in 0..<b.count { y[r * b.count + d] += b[d] } }
    }

    /// Attention of the `n` new queries over what the cache holds and the mask allows (causal,
    /// and SF-Attn's segments + sinks when set). GQA: query head h reads KV head h / (H / Hkv).
    /// Positions: absolute (keys as cached), or "cache" (re-numbered by slot, StreamingLLM), or
    /// auto: absolute while positions stay within the trained context, cache beyond.
    func attend(layer l: Int, q: [Float], n: Int, start: Int, out: inout [Float]) {
        let c = model.config, hd = c.headDim, qd = c.qDim, group = c.numHeads / c.numKVHeads
        let scale = 1 / Float(hd).squareRoot()
        let kern = kernels, sf = attention.sf, needScores = attention.policy.needsScores
        let trained = c.trainedContext, mode = attention.positions
        let caches = cache.heads[l], cap = cache.capacity
        // A cache holding exactly positions 0..<count (nothing evicted: slot = position) makes
        // "cache" positions the same as absolute ones: no rotation at all.
        let identity = caches.allSatisfy { $0.count == 0 || ($0.positions[0] == 0 && $0.positions[$0.count - 1] == $0.count - 1) }
        func usesCache(_ pos: Int) -> Bool { !identity && (mode == .cache || (mode == .auto && pos >= trained)) }
        // "cache" positions: each key moves from its absolute position to its slot once per step
        // and KV head (shared by the group's query heads and the chunk's queries), into scratch.
        let anyCache = usesCache(start + n - 1)
        // f32 keys and values: an f32 cache's own; an f16 cache's decoded for this layer where
        // sgemm or the delta rotation needs them. Otherwise (generation with absolute positions,
        // H2O steps) an f16 cache is read directly: f16 dot products and f16 axpy.
        let direct16 = cache.dtype == .f16 && !anyCache && !(n >= 2 && !needScores)
        let kv = direct16 ? [] : keysAndValues(layer: l)
        if anyCache {
            if deltaTable?.invFreq != rope.invFreq { deltaTable = RopeDeltaTable(invFreq: rope.invFreq) }
            if rotatedKeys.count < c.numKVHeads * cap * hd { rotatedKeys = [Float](repeating: 0, count: c.numKVHeads * cap * hd) }
            let table = deltaTable!, most = caches.map(\.count).max() ?? 0
            rotatedKeys.withUnsafeMutableBufferPointer { rp in
                let rot = rp.baseAddress!
                parallelFor(c.numKVHeads * most, threads: threads) { range in
                    for item in range {
                        let kh = item / most, j = item % most, hc = caches[kh]
                        guard j < hc.count else { continue }
                        table.rotate(kv[kh].keys + j * hd, to: rot + (kh * cap + j) * hd, by: j - hc.positions[j])
                    }
                }
            }
        }
        if n >= 2 && !needScores {
            attendBlocked(layer: l, q: q, n: n, start: start, kv: kv, usesCache: usesCache, out: &out)
            return
        }
        let table = deltaTable
        // Work items: (token, head) pairs; with H2O scores, whole KV heads (their scores are
        // accumulated by one worker, in a fixed order: deterministic at any thread count).
        let items = needScores ? c.numKVHeads : n * c.numHeads
        out.withUnsafeMutableBufferPointer { op in
            let outp = op.baseAddress!
            q.withUnsafeBufferPointer { qp in
                rotatedKeys.withUnsafeBufferPointer { rp in
                    parallelFor(items, threads: threads) { range in
                        var scores = [Float](repeating: 0, count: caches.map(\.count).max() ?? 0)
                        var slots = [Int](repeating: 0, count: scores.count)
                        var qs = [Float](repeating: 0, count: hd)
                        for item in range {
                            let tokens = needScores ? 0..<n : (item / c.numHeads)..<(item / c.numHeads + 1)
                            let heads = needScores ? (item * group)..<((item + 1) * group) : (item % c.numHeads)..<(item % c.numHeads + 1)
                            for i in tokens {
                                for head in heads {
                                    let kh = head / group, hc = caches[kh], pos = start + i
                                    let useCache = usesCache(pos)
                                    var m = 0
                                    hc.positions.withUnsafeBufferPointer { ps in
                                        for j in 0..<ps.count {
                                            let kp = ps[j]
                                            if kp > pos { break }  // slots are in position order
                                            if let sf, !sf.allowed(head: head, query: pos, key: kp) { continue }
                                            slots[m] = j
                                            m += 1
                                        }
                                    }
                                    let qv = qp.baseAddress! + i * qd + head * hd
                                    if useCache {
                                        // the query sits in its own slot: the chunk's tokens are the last n
                                        let own = hc.count - n + i
                                        qs.withUnsafeMutableBufferPointer { table!.rotate(qv, to: $0.baseAddress!, by: own - pos) }
                                    } else {
                                        for d in 0..<hd { qs[d] = qv[d] }
                                    }
                                    var mx = -Float.infinity
                                    if direct16 {
                                        let keys = UnsafePointer(hc.keys.assumingMemoryBound(to: UInt16.self))
                                        for t in 0..<m {
                                            let s = kern.dot_f16(keys + slots[t] * hd, qs, Int32(hd)) * scale
                                            scores[t] = s
                                            mx = max(mx, s)
                                        }
                                    } else {
                                        let keys = useCache ? rp.baseAddress! + kh * cap * hd : kv[kh].keys
                                        for t in 0..<m {
                                            let s = kern.dot_f32(keys + slots[t] * hd, qs, Int32(hd)) * scale
                                            scores[t] = s
                                            mx = max(mx, s)
                                        }
                                    }
                                    let sum = scores.withUnsafeMutableBufferPointer { kern.exp_shift_sum($0.baseAddress!, Int32(m), mx) }
                                    let o = outp + i * qd + head * hd
                                    for d in 0..<hd { o[d] = 0 }
                                    for t in 0..<m {
                                        let w = scores[t] / sum
                                        if direct16 {
                                            kern.axpy_f16(o, w, hc.values.assumingMemoryBound(to: UInt16.self) + slots[t] * hd, Int32(hd))
                                        } else {
                                            let vv = kv[kh].values + slots[t] * hd
                                            for d in 0..<hd { o[d] += w * vv[d] }
                                        }
                                        if needScores { hc.scores[slots[t]] += Double(w) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Prefill attention (several queries, no H2O scores) with sgemm: for each query head and
    /// block of 64 queries, S = Q·Kᵀ over the head's cache slots, the mask (causal, SF-Attn),
    /// softmax, then O = P·V. Work items are (head, block) pairs in head-major order, so each
    /// worker's contiguous share holds whole heads: balanced under the causal mask.
    /// `usesCache(position)`: whether that query uses "cache" positions (decided by `attend`).
    func attendBlocked(layer l: Int, q: [Float], n: Int, start: Int, kv: [(keys: UnsafePointer<Float>, values: UnsafePointer<Float>)],
                       usesCache: (Int) -> Bool, out: inout [Float]) {
        let c = model.config, hd = c.headDim, qd = c.qDim, group = c.numHeads / c.numKVHeads
        let scale = 1 / Float(hd).squareRoot()
        let sf = attention.sf, kern = kernels
        let caches = cache.heads[l], cap = cache.capacity
        let qb = 64, blocks = (n + qb - 1) / qb, items = c.numHeads * blocks
        let most = caches.map(\.count).max() ?? 0
        let t = max(1, min(threads, items))
        let need = qb * most + qb * hd
        if attnScratch.count < t || attnScratchFloats < need {
            for p in attnScratch { p.deallocate() }
            attnScratch = (0..<max(t, threads)).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: need) }
            attnScratchFloats = need
        }
        let scratch = attnScratch, table = deltaTable
        out.withUnsafeMutableBufferPointer { op in
            q.withUnsafeBufferPointer { qp in
                rotatedKeys.withUnsafeBufferPointer { rp in
                    parallelFor(t, threads: t) { workers in
                        for worker in workers {
                            let sBuf = scratch[worker], qBuf = scratch[worker] + qb * most
                            for item in (items * worker / t)..<(items * (worker + 1) / t) {
                                let head = item / blocks, b = item % blocks, kh = head / group, hc = caches[kh]
                                let i0 = b * qb, rows = min(qb, n - i0)
                                // causal: slots (in position order) past the block's last query are never read
                                let last = start + i0 + rows - 1
                                let m = hc.positions.withUnsafeBufferPointer { ps in
                                    var lo = 0, hi = ps.count
                                    while lo < hi { let mid = (lo + hi) / 2; if ps[mid] <= last { lo = mid + 1 } else { hi = mid } }
                                    return lo
                                }
                                // queries of this block; in cache position mode every query moves to its
                                // own slot (the chunk's tokens are the last n slots: one shared delta)
                                // (a block straddling the trained context under auto keeps its
                                // absolute rows: delta 0)
                                let cacheMode = usesCache(start + i0 + rows - 1)
                                if cacheMode {
                                    for i in i0..<(i0 + rows) {
                                        let delta = usesCache(start + i) ? (hc.count - n) - start : 0
                                        table!.rotate(qp.baseAddress! + i * qd + head * hd, to: qBuf + (i - i0) * hd, by: delta)
                                    }
                                } else {
                                    for i in 0..<rows { (qBuf + i * hd).update(from: qp.baseAddress! + (i0 + i) * qd + head * hd, count: hd) }
                                }
                                let stored = kv[kh].keys
                                let keys = cacheMode ? rp.baseAddress! + kh * cap * hd : stored
                                if cacheMode && !usesCache(start + i0) {
                                    // mixed block: absolute rows read stored keys, cache rows rotated ones
                                    for i in 0..<rows {
                                        let k = usesCache(start + i0 + i) ? keys : stored
                                        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(hd), scale, k, Int32(hd), qBuf + i * hd, 1, 0, sBuf + i * m, 1)
                                    }
                                } else {
                                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(m), Int32(hd), scale, qBuf, Int32(hd), keys, Int32(hd), 0, sBuf, Int32(m))
                                }
                                hc.positions.withUnsafeBufferPointer { ps in
                                    for i in 0..<rows {
                                        let pos = start + i0 + i, row = sBuf + i * m
                                        var mx = -Float.infinity
                                        if let sf {
                                            for j in 0..<m {
                                                let kp = ps[j]
                                                if kp > pos || !sf.allowed(head: head, query: pos, key: kp) { row[j] = -.infinity } else { mx = max(mx, row[j]) }
                                            }
                                        } else {
                                            for j in 0..<m {
                                                if ps[j] > pos { row[j] = -.infinity } else { mx = max(mx, row[j]) }
                                            }
                                        }
                                        let inv = 1 / kern.exp_shift_sum(row, Int32(m), mx)
                                        for j in 0..<m { row[j] *= inv }
                                    }
                                }
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(hd), Int32(m), 1, sBuf, Int32(m), kv[kh].values, Int32(hd), 0,
                                            op.baseAddress! + i0 * qd + head * hd, Int32(qd))
                            }
                        }
                    }
                }
            }
        }
    }
}
