import SKCore

/// The tensor names and shapes a Hugging Face LLaMA checkpoint must hold for a config.
public enum LlamaTensors {
    public static let embed = "model.embed_tokens.weight"
    public static let lmHead = "lm_head.weight"
    public static let finalNorm = "model.norm.weight"

    /// Every expected tensor with its shape (`[out, in]` for linear layers).
    public static func expectedShapes(_ c: LlamaConfig) -> [String: [Int]] {
        var s: [String: [Int]] = [embed: [c.vocabSize, c.hiddenSize], finalNorm: [c.hiddenSize]]
        if !c.tieWordEmbeddings { s[lmHead] = [c.vocabSize, c.hiddenSize] }
        for l in 0..<c.numHiddenLayers {
            let p = "model.layers.\(l)."
            s[p + "input_layernorm.weight"] = [c.hiddenSize]
            s[p + "post_attention_layernorm.weight"] = [c.hiddenSize]
            if c.family.sandwichNorms {
                s[p + "pre_feedforward_layernorm.weight"] = [c.hiddenSize]
                s[p + "post_feedforward_layernorm.weight"] = [c.hiddenSize]
            }
            if c.family.fusedProjections {
                s[p + "self_attn.qkv_proj.weight"] = [c.qDim + 2 * c.kvDim, c.hiddenSize]
            } else {
                s[p + "self_attn.q_proj.weight"] = [c.qDim, c.hiddenSize]
                s[p + "self_attn.k_proj.weight"] = [c.kvDim, c.hiddenSize]
                s[p + "self_attn.v_proj.weight"] = [c.kvDim, c.hiddenSize]
            }
            s[p + "self_attn.o_proj.weight"] = [c.hiddenSize, c.qDim]
            if c.qkNorm {
                s[p + "self_attn.q_norm.weight"] = [c.headDim]
                s[p + "self_attn.k_norm.weight"] = [c.headDim]
            }
            if c.attentionBias {
                s[p + "self_attn.q_proj.bias"] = [c.qDim]
                s[p + "self_attn.k_proj.bias"] = [c.kvDim]
                s[p + "self_attn.v_proj.bias"] = [c.kvDim]
                if c.family.outputBias { s[p + "self_attn.o_proj.bias"] = [c.hiddenSize] }
            }
            if c.family.fusedProjections {
                s[p + "mlp.gate_up_proj.weight"] = [2 * c.intermediateSize, c.hiddenSize]
            } else {
                s[p + "mlp.gate_proj.weight"] = [c.intermediateSize, c.hiddenSize]
                s[p + "mlp.up_proj.weight"] = [c.intermediateSize, c.hiddenSize]
            }
            s[p + "mlp.down_proj.weight"] = [c.hiddenSize, c.intermediateSize]
            if c.mlpBias {
                s[p + "mlp.gate_proj.bias"] = [c.intermediateSize]
                s[p + "mlp.up_proj.bias"] = [c.intermediateSize]
                s[p + "mlp.down_proj.bias"] = [c.hiddenSize]
            }
        }
        return s
    }

    /// A fused checkpoint tensor's parts as SKM stores them: name and rows of the fused tensor
    /// (Phi-3: qkv_proj = q, k, v; gate_up_proj = gate, up). Empty for unfused families.
    public static func fusedParts(_ c: LlamaConfig) -> [String: [(name: String, rows: Range<Int>)]] {
        guard c.family.fusedProjections else { return [:] }
        var out: [String: [(name: String, rows: Range<Int>)]] = [:]
        let q = c.qDim, kv = c.kvDim, inter = c.intermediateSize
        for l in 0..<c.numHiddenLayers {
            let p = "model.layers.\(l)."
            out[p + "self_attn.qkv_proj.weight"] = [(p + "self_attn.q_proj.weight", 0..<q), (p + "self_attn.k_proj.weight", q..<(q + kv)),
                                                    (p + "self_attn.v_proj.weight", (q + kv)..<(q + 2 * kv))]
            out[p + "mlp.gate_up_proj.weight"] = [(p + "mlp.gate_proj.weight", 0..<inter), (p + "mlp.up_proj.weight", inter..<(2 * inter))]
        }
        return out
    }

    /// Buffers some checkpoints carry that hold nothing the model needs: older transformers saved
    /// each layer's RoPE inverse frequencies (`…self_attn.rotary_emb.inv_freq`), recomputed from
    /// the config at load.
    public static func isIgnorableBuffer(_ name: String) -> Bool { name.hasSuffix(".rotary_emb.inv_freq") }

    /// Tensors whose first dimension is the vocabulary.
    public static func isVocabSized(_ name: String) -> Bool { name == embed || name == lmHead }

    /// Checks a checkpoint against its config: every expected tensor present with its shape.
    /// A tied model may still carry `lm_head.weight` (some exporters write it): allowed when
    /// its shape is right. Unknown extra tensors (e.g. rotary caches) are reported.
    public static func validate(names: [String], shape: (String) -> [Int]?, dtype: (String) -> DType?,
                                config c: LlamaConfig, source: String) throws -> [String] {
        let expected = expectedShapes(c)
        for (name, want) in expected.sorted(by: { $0.key < $1.key }) {
            guard let got = shape(name) else {
                throw SinkKitError(.shapeMismatch, "\(source): tensor \(name) is missing (config \(c.path) expects shape \(want))")
            }
            guard got == want else {
                throw SinkKitError(.shapeMismatch, "\(source): tensor \(name) has shape \(got), config \(c.path) expects \(want)")
            }
            if let d = dtype(name), !d.isFloatWeight {
                throw SinkKitError(.unsupportedDType, "\(source): tensor \(name) is \(d.rawValue); expected F32, F16 or BF16")
            }
        }
        var extras: [String] = []
        for n in names where expected[n] == nil {
            if n == lmHead, c.tieWordEmbeddings, shape(n) == [c.vocabSize, c.hiddenSize] { continue }
            extras.append(n)
        }
        return extras.sorted()
    }
}
