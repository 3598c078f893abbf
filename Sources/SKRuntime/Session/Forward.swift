import SKCore
import SKKernels

/// The LLaMA layer loop (as llama2.c's `forward`): embedding, then per layer RMSNorm → q/k/v →
/// RoPE → cache append → attention → policy eviction → o_proj → residual, RMSNorm → SwiGLU MLP →
/// residual; final RMSNorm and the output head for the rows asked for.
extension Session {
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
        state.reserve(rows: max(n, min(32, logitsFor.count)))
        let x = state.x, xb = state.xb, tmp = state.tmp          // (n, hidden)
        let q = state.q, att = state.att                         // (n, heads·headDim)
        let k = state.k, v = state.v                             // (n, kvHeads·headDim)
        let g = state.g, u = state.u                             // (n, intermediate)

        for (i, t) in tokens.enumerated() { model.embedding.dequantizeRow(t, into: x + i * h) }
        for (l, layer) in model.layers.enumerated() {
            rmsNorm(x, layer.inputNorm, into: xb, rows: n)
            matmul(layer.q, xb, n: n, out: q)
            matmul(layer.k, xb, n: n, out: k)
            matmul(layer.v, xb, n: n, out: v)
            if let b = layer.qBias { addBias(q, b, rows: n) }
            if let b = layer.kBias { addBias(k, b, rows: n) }
            if let b = layer.vBias { addBias(v, b, rows: n) }
            cosSin.withUnsafeBufferPointer { csp in
                let cb = csp.baseAddress!, rope = rope
                parallelFor(n, threads: n >= 16 ? threads : 1) { rows in
                    for i in rows {
                        rope.apply(q + i * qd, heads: c.numHeads, cosSin: cb + i * c.headDim)
                        rope.apply(k + i * kvd, heads: c.numKVHeads, cosSin: cb + i * c.headDim)
                    }
                }
            }
            // Append to the cache (keys rotated at their absolute position).
            for i in 0..<n {
                for kh in 0..<c.numKVHeads {
                    let o = i * kvd + kh * c.headDim
                    cache.heads[l][kh].append(key: k + o, value: v + o, position: start + i)
                }
            }
            attend(layer: l, q: q, n: n, start: start, out: att)
            // The policy evicts after attention (H2O's scores include this step).
            for kh in 0..<c.numKVHeads {
                let hc = cache.heads[l][kh]
                let keep = evictor.keep(hc, layer: l, kvHead: kh, nextPosition: start + n)
                if keep.count < hc.count { hc.compact(keep: keep) }
            }
            matmul(layer.o, att, n: n, out: tmp)
            if let b = layer.oBias { addBias(tmp, b, rows: n) }
            addInPlace(x, tmp, count: n * h)
            rmsNorm(x, layer.postNorm, into: xb, rows: n)
            matmul(layer.gate, xb, n: n, out: g)
            matmul(layer.up, xb, n: n, out: u)
            if let b = layer.gateBias { addBias(g, b, rows: n) }
            if let b = layer.upBias { addBias(u, b, rows: n) }
            swiglu(g, u, rows: n, width: inter)
            matmul(layer.down, g, n: n, out: tmp)
            if let b = layer.downBias { addBias(tmp, b, rows: n) }
            addInPlace(x, tmp, count: n * h)
        }
        cache.position += n

        // Logits for the requested rows only, a few rows at a time.
        let vocab = c.vocabSize
        var logits = [Float](repeating: 0, count: logitsFor.count * vocab)
        var chunkStart = 0
        while chunkStart < logitsFor.count {
            let rows = Array(logitsFor[chunkStart..<min(logitsFor.count, chunkStart + 32)])
            // the selected rows, normed, in xb (n ≥ rows.count: the rows come from this chunk)
            for (j, r) in rows.enumerated() { (tmp + j * h).update(from: x + r * h, count: h) }
            rmsNorm(tmp, model.finalNorm, into: xb, rows: rows.count)
            logits.withUnsafeMutableBufferPointer { lp in
                matmul(model.head, xb, n: rows.count, out: lp.baseAddress! + chunkStart * vocab)
            }
            chunkStart += rows.count
        }
        return logits
    }

    /// RMSNorm of each row, rows spread over the workers (each row's sums in one order).
    func rmsNorm(_ x: UnsafePointer<Float>, _ w: [Float], into out: UnsafeMutablePointer<Float>, rows: Int) {
        let h = w.count, eps = model.config.rmsNormEps
        w.withUnsafeBufferPointer { wp in
            let wb = wp.baseAddress!
            parallelFor(rows, threads: rows >= 16 ? threads : 1) { rs in
                for r in rs {
                    let xr = x + r * h, or = out + r * h
                    var ss: Float = 0
                    for d in 0..<h { ss += xr[d] * xr[d] }
                    let scale = 1 / (ss / Float(h) + eps).squareRoot()
                    for d in 0..<h { or[d] = wb[d] * (xr[d] * scale) }
                }
            }
        }
    }

    /// x += y, elementwise.
    func addInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { x[i] += y[i] }
    }

    /// SwiGLU in place, `g = silu(g) · u`, whole rows per worker (the same arithmetic for every
    /// element whatever the split).
    func swiglu(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, rows: Int, width: Int) {
        let kern = kernels
        parallelFor(rows, threads: threads) { r in
            kern.silu_mul(g + r.lowerBound * width, u + r.lowerBound * width, Int32(r.count * width))
        }
    }

    func addBias(_ y: UnsafeMutablePointer<Float>, _ b: [Float], rows: Int) {
        for r in 0..<rows { for d in 0..<b.count { y[r * b.count + d] += b[d] } }
    }
}
