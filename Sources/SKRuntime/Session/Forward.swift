#if canImport(Glibc)
import Glibc
#endif
import SKCore
import SKKernels

/// One sequence's part of a forward step: its session (cache, policy, positions), the tokens to
/// append and which of them need logits.
public struct ForwardSegment {
    public let session: Session
    public let tokens: [Int]
    public let logitsFor: [Int]
    public init(session: Session, tokens: [Int], logitsFor: [Int]) {
        self.session = session
        self.tokens = tokens
        self.logitsFor = logitsFor
    }
}

/// The LLaMA layer loop (as llama2.c's `forward`), over one or several sequences at once:
/// embedding, then per layer RMSNorm → q/k/v → RoPE → cache append → attention → policy eviction
/// → o_proj → residual, RMSNorm → SwiGLU MLP → residual; final RMSNorm and the output head for the
/// rows asked for. The rows of every segment are stacked, so the weights are read once per step
/// for all of them (a server's slots decoding together); RoPE, the cache, attention and eviction
/// are each segment's own.
enum Forward {
    /// Logits per segment (row-major, vocab each, in `logitsFor` order).
    static func run(_ input: [ForwardSegment], model: LlamaModel, matmul: MatMul, state: RunState, threads: Int) throws -> [[Float]] {
        let c = model.config
        for s in input { try s.session.checkRoom(for: s.tokens) }
        guard Set(input.map { ObjectIdentifier($0.session) }).count == input.count else {
            throw SinkKitError(.invalidArgument, "a session appears twice in one forward step")
        }
        // Determinism: every segment gets exactly the arithmetic it would get alone. One-token
        // segments (decode) go first and share the matmuls row by row (the one-row path, as alone);
        // each longer segment (a prefill chunk) has matmuls of its own rows (the path its length
        // picks, as alone).
        let order = input.indices.sorted { (input[$0].tokens.count == 1 ? 0 : 1, $0) < (input[$1].tokens.count == 1 ? 0 : 1, $1) }
        let segments = order.map { input[$0] }
        let singles = segments.prefix { $0.tokens.count == 1 }.count
        let n = segments.reduce(0) { $0 + $1.tokens.count }
        guard n > 0 else { return segments.map { _ in [] } }
        let logitRows = segments.reduce(0) { $0 + $1.logitsFor.count }
        let h = c.hiddenSize, qd = c.qDim, kvd = c.kvDim, inter = c.intermediateSize
        state.reserve(rows: max(n, min(32, logitRows)))
        let x = state.x, xb = state.xb, tmp = state.tmp          // (n, hidden)
        let q = state.q, att = state.att                         // (n, heads·headDim)
        let k = state.k, v = state.v                             // (n, kvHeads·headDim)
        let g = state.g, u = state.u                             // (n, intermediate)
        // Row offsets and RoPE tables per segment (positions differ between sequences).
        var offsets: [Int] = [], off = 0
        var cosSins: [[Float]] = []
        for s in segments {
            offsets.append(off)
            off += s.tokens.count
            s.session.rope.adapt(toSequenceLength: s.session.cache.position + s.tokens.count)
            cosSins.append(s.session.rope.cosSin(start: s.session.cache.position, count: s.tokens.count))
        }
        for s in segments { s.session.evictor.beginStep(start: s.session.cache.position, count: s.tokens.count) }
        var r = 0
        // Gemma: embeddings times √hidden (transformers rounds the normalizer to the activations' type)
        let embedScale: Float? = c.family.scalesEmbedding ? Float(Double(h).squareRoot()) : nil
        for s in segments {
            let ad = s.session.adapter, table = ad?.embedding ?? model.embedding
            for t in s.tokens {
                table.dequantizeRow(t, into: x + r * h)
                ad?.addEmbeddingDelta(t, into: x + r * h, hidden: h)
                if let e = embedScale { for d in 0..<h { x[r * h + d] *= e } }
                r += 1
            }
        }
        // A segment's adapter (run-time LoRA): its norms stand in for the model's; its low-rank
        // deltas are added to its rows after each matmul.
        let adapted = segments.contains { $0.session.adapter != nil }
        var loraScratch: [Float] = []
        func norm(_ src: UnsafePointer<Float>, _ name: String, _ w: [Float], into dst: UnsafeMutablePointer<Float>) {
            guard adapted else { rmsNorm(src, w, eps: c.rmsNormEps, into: dst, rows: n, threads: threads); return }
            for (si, s) in segments.enumerated() {
                let o = offsets[si]
                rmsNorm(src + o * h, s.session.adapter?.norm(name) ?? w, eps: c.rmsNormEps, into: dst + o * h, rows: s.tokens.count, threads: threads)
            }
        }
        // Qwen3's q/k norms: each head's vector normed on its own (in place), an adapter's weights
        // standing in for the model's.
        func headNorm(_ x: UnsafeMutablePointer<Float>, _ name: String, _ w: [Float], heads: Int, width: Int) {
            for (si, s) in segments.enumerated() {
                let o = offsets[si]
                rmsNorm(x + o * width, s.session.adapter?.norm(name) ?? w, eps: c.rmsNormEps, into: x + o * width, rows: s.tokens.count * heads, threads: threads)
            }
        }
        func lora(_ l: Int, _ kind: LoRAAdapter.Kind, _ x: UnsafePointer<Float>, _ xCols: Int, _ out: UnsafeMutablePointer<Float>, _ outCols: Int) {
            guard adapted else { return }
            for (si, s) in segments.enumerated() {
                guard let ad = s.session.adapter, let p = ad.pair(layer: l, kind: kind) else { continue }
                let o = offsets[si]
                ad.apply(p, x: x + o * xCols, ldX: xCols, n: s.tokens.count, out: out + o * outCols, ldOut: outCols, scratch: &loraScratch)
            }
        }
        // The matmul groups: (first row, rows, one-row path).
        var groups: [(Int, Int, Bool)] = singles > 0 ? [(0, singles, true)] : []
        for si in singles..<segments.count { groups.append((offsets[si], segments[si].tokens.count, false)) }
        let stats = segments.count == 1 ? segments[0].session.activationStatistics : nil
        func mm(_ w: WeightMatrix, _ x: UnsafeMutablePointer<Float>, _ xCols: Int, _ out: UnsafeMutablePointer<Float>) {
            stats?.add(w.name, x, rows: n, cols: xCols)
            for (first, rows, rowwise) in groups { matmul(w, x + first * xCols, n: rows, out: out + first * w.rows, rowwise: rowwise) }
        }

        for (l, layer) in model.layers.enumerated() {
            let p = "model.layers.\(l)."
            norm(x, p + "input_layernorm.weight", layer.inputNorm, into: xb)
            mm(layer.q, xb, h, q); lora(l, .q, xb, h, q, qd)
            mm(layer.k, xb, h, k); lora(l, .k, xb, h, k, kvd)
            mm(layer.v, xb, h, v); lora(l, .v, xb, h, v, kvd)
            if let b = layer.qBias { addBias(q, b, rows: n) }
            if let b = layer.kBias { addBias(k, b, rows: n) }
            if let b = layer.vBias { addBias(v, b, rows: n) }
            if let w = layer.qNorm { headNorm(q, p + "self_attn.q_norm.weight", w, heads: c.numHeads, width: qd) }
            if let w = layer.kNorm { headNorm(k, p + "self_attn.k_norm.weight", w, heads: c.numKVHeads, width: kvd) }
            for (si, s) in segments.enumerated() {
                let sess = s.session, m = s.tokens.count, o = offsets[si], start = sess.cache.position
                cosSins[si].withUnsafeBufferPointer { csp in
                    let cb = csp.baseAddress!, rope = sess.rope
                    parallelFor(m, threads: m >= 16 ? threads : 1) { rows in
                        for i in rows {
                            rope.apply(q + (o + i) * qd, heads: c.numHeads, cosSin: cb + i * c.headDim)
                            rope.apply(k + (o + i) * kvd, heads: c.numKVHeads, cosSin: cb + i * c.headDim)
                        }
                    }
                }
                // Append to the cache (keys rotated at their absolute position).
                for i in 0..<m {
                    for kh in 0..<c.numKVHeads {
                        let e = (o + i) * kvd + kh * c.headDim
                        sess.cache.heads[l][kh].append(key: k + e, value: v + e, position: start + i)
                    }
                }
                sess.attend(layer: l, q: q + o * qd, n: m, start: start, out: att + o * qd)
                // The policy evicts after attention (H2O's scores include this step).
                let heads = sess.cache.heads[l]
                for (hc, keep) in zip(heads, sess.evictor.keepLayer(heads, layer: l, nextPosition: start + m)) where keep.count < hc.count {
                    hc.compact(keep: keep)
                }
            }
            mm(layer.o, att, qd, tmp); lora(l, .o, att, qd, tmp, h)
            if let b = layer.oBias { addBias(tmp, b, rows: n) }
            if let w = layer.attnOutNorm { norm(tmp, p + "post_attention_layernorm.weight", w, into: tmp) }
            addInPlace(x, tmp, count: n * h)
            norm(x, p + (c.family.sandwichNorms ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"), layer.postNorm, into: xb)
            mm(layer.gate, xb, h, g); lora(l, .gate, xb, h, g, inter)
            mm(layer.up, xb, h, u); lora(l, .up, xb, h, u, inter)
            if let b = layer.gateBias { addBias(g, b, rows: n) }
            if let b = layer.upBias { addBias(u, b, rows: n) }
            if c.family.activation == .geluTanh {
                gegluTanh(g, u, count: n * inter)
            } else {
                swiglu(g, u, rows: n, width: inter, kernels: matmul.kernels.pointee, threads: threads)
            }
            mm(layer.down, g, inter, tmp); lora(l, .down, g, inter, tmp, h)
            if let b = layer.downBias { addBias(tmp, b, rows: n) }
            if let w = layer.mlpOutNorm { norm(tmp, p + "post_feedforward_layernorm.weight", w, into: tmp) }
            addInPlace(x, tmp, count: n * h)
        }
        for s in segments { s.session.cache.position += s.tokens.count }

        // Logits for the requested rows only, a few rows at a time: the one-token segments'
        // rows together (row by row), each other segment's on their own.
        let vocab = c.vocabSize
        var out = [[Float]](repeating: [], count: segments.count)
        var logitGroups: [([Int], [Int], Bool)] = []     // (segments, their rows, one-row path)
        if singles > 0 {
            let ids = Array(0..<singles)
            logitGroups.append((ids, ids.flatMap { si in segments[si].logitsFor.map { offsets[si] + $0 } }, true))
        }
        for si in singles..<segments.count { logitGroups.append(([si], segments[si].logitsFor.map { offsets[si] + $0 }, false)) }
        for (ids, wanted, rowwise) in logitGroups {
            var logits = [Float](repeating: 0, count: wanted.count * vocab)
            var chunkStart = 0
            while chunkStart < wanted.count {
                let rows = Array(wanted[chunkStart..<min(wanted.count, chunkStart + 32)])
                // the selected rows, then normed into xb (n ≥ rows.count)
                for (j, row) in rows.enumerated() { (tmp + j * h).update(from: x + row * h, count: h) }
                rmsNorm(tmp, model.finalNorm, eps: c.rmsNormEps, into: xb, rows: rows.count, threads: threads)
                stats?.add(model.head.name, xb, rows: rows.count, cols: h)
                logits.withUnsafeMutableBufferPointer { lp in
                    matmul(model.head, xb, n: rows.count, out: lp.baseAddress! + chunkStart * vocab, rowwise: rowwise)
                }
                if adapted {
                    // rows of segments with an adapter: its final norm and head (recomputed per row)
                    for (j, row) in rows.enumerated() {
                        guard let si = offsets.lastIndex(where: { $0 <= row }), let ad = segments[si].session.adapter,
                              ad.norm("model.norm.weight") != nil || ad.head != nil else { continue }
                        rmsNorm(x + row * h, ad.norm("model.norm.weight") ?? model.finalNorm, eps: c.rmsNormEps, into: xb, rows: 1, threads: 1)
                        logits.withUnsafeMutableBufferPointer { lp in
                            matmul(ad.head ?? model.head, xb, n: 1, out: lp.baseAddress! + (chunkStart + j) * vocab, rowwise: true)
                        }
                    }
                }
                chunkStart += rows.count
            }
            if let cap = c.finalSoftcap {
                // Gemma 2's final logit soft-capping
                for i in logits.indices { logits[i] = cap * tanh(logits[i] / cap) }
            }
            var at = 0
            for si in ids {
                out[si] = Array(logits[(at * vocab)..<((at + segments[si].logitsFor.count) * vocab)])
                at += segments[si].logitsFor.count
            }
        }
        // back to the caller's order
        var result = [[Float]](repeating: [], count: input.count)
        for (k, original) in order.enumerated() { result[original] = out[k] }
        return result
    }

    /// RMSNorm of each row, rows spread over the workers (each row's sums in one order).
    static func rmsNorm(_ x: UnsafePointer<Float>, _ w: [Float], eps: Float, into out: UnsafeMutablePointer<Float>, rows: Int, threads: Int) {
        let h = w.count
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
    static func addInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { x[i] += y[i] }
    }

    /// SwiGLU in place, `g = silu(g) · u`, whole rows per worker (the same arithmetic for every
    /// element whatever the split).
    static func swiglu(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, rows: Int, width: Int, kernels: sk_kernel_table, threads: Int) {
        parallelFor(rows, threads: threads) { r in
            kernels.silu_mul(g + r.lowerBound * width, u + r.lowerBound * width, Int32(r.count * width))
        }
    }

    /// GeGLU in place, `g = gelu_tanh(g) · u` (PyTorch's tanh approximation:
    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))).
    static func gegluTanh(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, count: Int) {
        let k = Float((2 / Double.pi).squareRoot())
        for i in 0..<count {
            let x = g[i]
            g[i] = 0.5 * x * (1 + tanh(k * (x + 0.044715 * x * x * x))) * u[i]
        }
    }

    static func addBias(_ y: UnsafeMutablePointer<Float>, _ b: [Float], rows: Int) {
        for r in 0..<rows { for d in 0..<b.count { y[r * b.count + d] += b[d] } }
    }
}

extension Session {
    /// Refuses tokens that would not fit: a full context, a bounded cache's chunk, ids outside
    /// the vocabulary.
    func checkRoom(for tokens: [Int]) throws {
        let n = tokens.count
        if let ctx = context, cache.position + n > ctx {
            throw SinkKitError(.invalidArgument, "context full: \(cache.position) + \(n) tokens exceed the \(ctx)-token context (a bounded --kv policy streams any length)")
        }
        guard cache.maxSlots + n <= cache.capacity else {
            throw SinkKitError(.invalidArgument, "KV cache full: \(cache.maxSlots) + \(n) slots exceed its \(cache.capacity) (prefill chunks must not exceed the chunk size)")
        }
        let vocab = model.config.vocabSize
        for t in tokens where t < 0 || t >= vocab {
            throw SinkKitError(.invalidArgument, "token id \(t) is outside the vocabulary (\(vocab))")
        }
    }

    func forwardChunk(_ tokens: [Int], logitsFor: [Int]) throws -> [Float] {
        guard !tokens.isEmpty else { return [] }
        return try Forward.run([ForwardSegment(session: self, tokens: tokens, logitsFor: logitsFor)],
                               model: model, matmul: matmul, state: state, threads: threads)[0]
    }
}

/// Forward steps over several sessions of one model at once (a server's slots): one batch's rows
/// share every weight read. Owns its own activation memory and matmul scratch; each session keeps
/// its cache, policy and attention scratch. Sessions in a batch must not be used elsewhere
/// meanwhile.
public final class BatchForward {
    public let model: LlamaModel
    public let threads: Int
    let matmul: MatMul
    let state: RunState

    /// See `Session.preciseActivations`.
    public var preciseActivations: Bool {
        get { matmul.preciseActivations }
        set { matmul.preciseActivations = newValue }
    }

    public init(model: LlamaModel, threads: Int) {
        self.model = model
        self.threads = max(1, threads)
        matmul = MatMul(threads: self.threads)
        state = RunState(config: model.config, capacity: 1, workers: self.threads)
    }

    /// One step: each segment's tokens appended at its session's next positions (a bounded
    /// session's chunk at most), logits per segment.
    public func step(_ segments: [ForwardSegment]) throws -> [[Float]] {
        guard !segments.isEmpty else { return [] }
        return try Forward.run(segments, model: model, matmul: matmul, state: state, threads: threads)
    }
}
