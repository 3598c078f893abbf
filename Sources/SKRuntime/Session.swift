import Foundation
import SKCore
import SKKernels

/// One inference stream over a model: the KV cache and the scratch buffers of the forward pass.
/// `forward` appends tokens at the next positions and returns the logits asked for.
public final class Session {
    public let model: LlamaModel
    public let cache: KVCache
    public let threads: Int
    var rope: Rope
    let matmul: MatMul
    let kernels: sk_kernel_table

    public init(model: LlamaModel, context: Int, threads: Int) throws {
        let c = model.config
        guard context > 0 else { throw SinkKitError(.invalidArgument, "context must be positive") }
        self.model = model
        self.threads = max(1, threads)
        cache = KVCache(layers: c.numLayers, kvHeads: c.numKVHeads, headDim: c.headDim, capacity: context)
        rope = Rope(config: c)
        matmul = MatMul(threads: self.threads)
        kernels = sk_kernels_best().pointee
    }

    public var position: Int { cache.count }
    public var kernelName: String { String(cString: kernels.name) }

    public func reset() { cache.reset() }

    /// Runs `tokens` through the model at positions `position ..< position + n`.
    /// - Parameter logitsFor: indices into `tokens` whose logits to return (row-major, vocab each).
    public func forward(_ tokens: [Int], logitsFor: [Int]) throws -> [Float] {
        let c = model.config, n = tokens.count
        guard n > 0 else { return [] }
        guard cache.count + n <= cache.capacity else {
            throw SinkKitError(.invalidArgument, "context full: \(cache.count) + \(n) tokens exceed the \(cache.capacity)-token context")
        }
        for t in tokens where t < 0 || t >= c.vocabSize {
            throw SinkKitError(.invalidArgument, "token id \(t) is outside the vocabulary (\(c.vocabSize))")
        }
        let start = cache.count
        rope.adapt(toSequenceLength: start + n)
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
                    for i in 0..<n {
                        rope.apply(qp.baseAddress! + i * qd, heads: c.numHeads, position: start + i)
                        rope.apply(kp.baseAddress! + i * kvd, heads: c.numKVHeads, position: start + i)
                    }
                }
            }
            // Append to the cache.
            for i in 0..<n {
                for kh in 0..<c.numKVHeads {
                    let dst = cache.offset(head: kh, slot: start + i)
                    for d in 0..<c.headDim {
                        cache.keys[l][dst + d] = k[i * kvd + kh * c.headDim + d]
                        cache.values[l][dst + d] = v[i * kvd + kh * c.headDim + d]
                    }
                }
            }
            attention(layer: l, q: q, n: n, start: start, out: &att)
            att.withUnsafeBufferPointer { ap in
                tmp.withUnsafeMutableBufferPointer { matmul(layer.o, ap.baseAddress!, n: n, out: $0.baseAddress!) }
            }
            if let b = layer.oBias { addBias(&tmp, b, rows: n) }
            for i in 0..<(n * h) { x[i] += tmp[i] }
            rmsNorm(x, layer.postNorm, into: &xb, rows: n)
            xb.withUnsafeBufferPointer { xbp in
                g.withUnsafeMutableBufferPointer { matmul(layer.gate, xbp.baseAddress!, n: n, out: $0.baseAddress!) }
                u.withUnsafeMutableBufferPointer { matmul(layer.up, xbp.baseAddress!, n: n, out: $0.baseAddress!) }
            }
            for i in 0..<(n * inter) { let a = g[i]; g[i] = a / (1 + exp(-a)) * u[i] }
            g.withUnsafeBufferPointer { gp in
                tmp.withUnsafeMutableBufferPointer { matmul(layer.down, gp.baseAddress!, n: n, out: $0.baseAddress!) }
            }
            for i in 0..<(n * h) { x[i] += tmp[i] }
        }
        cache.advance(n)

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

    func rmsNorm(_ x: [Float], _ w: [Float], into out: inout [Float], rows: Int) {
        let h = w.count, eps = model.config.rmsNormEps
        for r in 0..<rows {
            var ss: Float = 0
            for d in 0..<h { ss += x[r * h + d] * x[r * h + d] }
            let scale = 1 / (ss / Float(h) + eps).squareRoot()
            for d in 0..<h { out[r * h + d] = w[d] * (x[r * h + d] * scale) }
        }
    }

    func addBias(_ y: inout [Float], _ b: [Float], rows: Int) {
        for r in 0..<rows { for d in 0..<b.count { y[r * b.count + d] += b[d] } }
    }

    /// Causal attention of the `n` new queries over the cache (GQA: query head h reads KV head
    /// h / (heads / kvHeads)). Each (token, head) pair is computed by one worker.
    func attention(layer l: Int, q: [Float], n: Int, start: Int, out: inout [Float]) {
        let c = model.config, hd = c.headDim, qd = c.qDim, group = c.numHeads / c.numKVHeads
        let scale = 1 / Float(hd).squareRoot()
        let keys = cache.keys[l], values = cache.values[l]
        let kern = kernels
        out.withUnsafeMutableBufferPointer { op in
            let outp = op.baseAddress!
            q.withUnsafeBufferPointer { qp in
                keys.withUnsafeBufferPointer { kp in
                    values.withUnsafeBufferPointer { vp in
                        parallelFor(n * c.numHeads, threads: threads) { range in
                            var scores = [Float](repeating: 0, count: start + n)
                            for idx in range {
                                let i = idx / c.numHeads, head = idx % c.numHeads, kh = head / group
                                let pos = start + i
                                let qv = qp.baseAddress! + i * qd + head * hd
                                var mx = -Float.infinity
                                for j in 0...pos {
                                    let s = kern.dot_f32(kp.baseAddress! + cache.offset(head: kh, slot: j), qv, Int32(hd)) * scale
                                    scores[j] = s
                                    mx = max(mx, s)
                                }
                                var sum: Float = 0
                                for j in 0...pos { let e = exp(scores[j] - mx); scores[j] = e; sum += e }
                                let o = outp + i * qd + head * hd
                                for d in 0..<hd { o[d] = 0 }
                                for j in 0...pos {
                                    let w = scores[j] / sum
                                    let vv = vp.baseAddress! + cache.offset(head: kh, slot: j)
                                    for d in 0..<hd { o[d] += w * vv[d] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
