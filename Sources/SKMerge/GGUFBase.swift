import SKCore
import SKGGUF
import SKModel
import SKSafetensors

/// A GGUF model file seen as the Hugging Face checkpoint it was converted from, so the merge
/// and the converter read it like any base: its metadata becomes config.json, its tensors get
/// their transformers names, and the rows of `attn_q` / `attn_k`, which llama.cpp's converter
/// interleaves for its RoPE kernel, are put back in transformers' order. Tensors are decoded to
/// f32 as ggml's reference dequantizers do, one at a time (pages released after each).
///
/// Architectures: `llama` (Llama 1-3 without llama3 RoPE factors, Mistral without a sliding
/// window, SmolLM, TinyLlama). Anything that would change the math and has no counterpart here
/// (mixture of experts, partial rotary, llama3 RoPE frequency factors, YaRN) is refused by name.
public final class GGUFBase: TensorSource {
    public let gguf: GGUFFile
    public let tensorNames: [String]
    /// config.json of the model (transformers' llama keys).
    public let config: [String: Any]
    private let byName: [String: (tensor: GGUFFile.Tensor, info: TensorInfo, heads: Int?)]
    public let headDim: Int

    public var sourceDescription: String { gguf.path }
    public func info(_ name: String) -> TensorInfo? { byName[name]?.info }

    public convenience init(path: String) throws { try self.init(try GGUFFile(path: path)) }

    public init(_ g: GGUFFile) throws {
        gguf = g
        let path = g.path
        let arch = g.metadata["general.architecture"]?.string ?? "(none)"
        guard arch == "llama" else {
            throw SinkKitError(.refused, "\(path): general.architecture \"\(arch)\" is not supported; SinkKit reads llama GGUF files (Llama, Mistral, SmolLM, TinyLlama)")
        }
        func m(_ k: String) -> GGUFFile.Value? { g.metadata["llama." + k] }
        func int(_ k: String, required: Bool = true, min: Int = 1) throws -> Int? {
            guard let v = m(k) else {
                if required { throw SinkKitError(.config, "\(path): llama.\(k) is missing") }
                return nil
            }
            guard let n = v.int, n >= min, n <= Limits.maxPositions else {
                throw SinkKitError(.config, "\(path): llama.\(k) must be an integer from \(min) to \(Limits.maxPositions)")
            }
            return n
        }
        func float(_ k: String) throws -> Double? {
            guard let v = m(k) else { return nil }
            guard let d = v.double, d.isFinite else { throw SinkKitError(.config, "\(path): llama.\(k) must be a finite number") }
            return d
        }
        let layers = try int("block_count")!, hidden = try int("embedding_length")!
        let ffn = try int("feed_forward_length")!, heads = try int("attention.head_count")!
        let kvHeads = try int("attention.head_count_kv", required: false) ?? heads
        guard hidden % heads == 0 || m("attention.key_length") != nil else {
            throw SinkKitError(.config, "\(path): llama.embedding_length \(hidden) is not a multiple of llama.attention.head_count \(heads)")
        }
        let headDim = try int("attention.key_length", required: false) ?? hidden / heads
        if let v = try int("attention.value_length", required: false), v != headDim {
            throw SinkKitError(.refused, "\(path): llama.attention.value_length \(v) differs from the key length \(headDim); not supported")
        }
        if let r = try int("rope.dimension_count", required: false), r != headDim {
            throw SinkKitError(.refused, "\(path): llama.rope.dimension_count \(r) rotates part of each \(headDim)-wide head (partial rotary), which llama models do not use; not supported")
        }
        if let e = try int("expert_count", required: false, min: 0), e > 0 {
            throw SinkKitError(.refused, "\(path): a mixture of \(e) experts (llama.expert_count); not supported")
        }
        guard let eps = try float("attention.layer_norm_rms_epsilon"), eps > 0 else {
            throw SinkKitError(.config, "\(path): llama.attention.layer_norm_rms_epsilon is missing or not positive")
        }
        let theta = try float("rope.freq_base") ?? 10000
        let context = try int("context_length", required: false) ?? 2048
        var config: [String: Any] = [
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
            "hidden_size": hidden, "intermediate_size": ffn, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": kvHeads, "head_dim": headDim,
            "rms_norm_eps": eps, "rope_theta": theta, "max_position_embeddings": context,
            "attention_bias": false, "mlp_bias": false, "torch_dtype": "float32",
        ]
        switch m("rope.scaling.type")?.string ?? "none" {
        case "none": break
        case "linear":
            guard let f = try float("rope.scaling.factor"), f >= 1 else {
                throw SinkKitError(.config, "\(path): llama.rope.scaling.factor must be at least 1 for linear RoPE scaling")
            }
            if f > 1 { config["rope_scaling"] = ["type": "linear", "rope_type": "linear", "factor": f] as [String: Any] }
        case let t:
            throw SinkKitError(.refused, "\(path): llama.rope.scaling.type \"\(t)\" is not supported (none or linear)")
        }
        // Llama 3.x's RoPE: llama.cpp's converter stores the llama3 rule's per-frequency divisors as
        // rope_freqs.weight (angle = p · θ^(−2i/d) / f_i). In transformers' terms that is exactly
        // longrope with equal short and long factors and no attention factor.
        if let rf = g.tensor("rope_freqs.weight") {
            guard rf.shape == [headDim / 2], rf.type == 0 else {
                throw SinkKitError(.shapeMismatch, "\(path): rope_freqs.weight has shape \(rf.shape) (ggml type \(rf.type)); expected \(headDim / 2) F32 factors")
            }
            let f = try g.dequantize(rf).map(Double.init)
            guard f.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw SinkKitError(.config, "\(path): rope_freqs.weight holds a factor that is not a positive number") }
            guard config["rope_scaling"] == nil else { throw SinkKitError(.refused, "\(path): rope_freqs.weight together with linear RoPE scaling is not supported") }
            config["rope_scaling"] = ["rope_type": "longrope", "short_factor": f, "long_factor": f, "attention_factor": 1.0,
                                      "original_max_position_embeddings": context] as [String: Any]
        }
        for (k, key) in [("bos_token_id", "tokenizer.ggml.bos_token_id"), ("eos_token_id", "tokenizer.ggml.eos_token_id")] {
            if let id = g.metadata[key]?.int { config[k] = id }
        }

        // Tensor names: llama.cpp's for the llama architecture -> transformers'.
        var map: [String: (GGUFFile.Tensor, TensorInfo, Int?)] = [:], names: [String] = []
        for t in g.tensors {
            if t.name == "rope_freqs.weight" { continue }   // read into the config above
            guard let hf = GGUFNames.transformers(t.name), !hf.hasPrefix("model.layers.") || Int(hf.split(separator: ".")[2])! < layers else {
                throw SinkKitError(.shapeMismatch, "\(path): tensor \(t.name) is not part of a llama model with \(layers) layers; SinkKit would not read it")
            }
            var permuteHeads: Int?
            if t.name.hasSuffix(".attn_q.weight") { permuteHeads = heads }
            if t.name.hasSuffix(".attn_k.weight") { permuteHeads = kvHeads }
            let dtype: DType = t.type == 1 ? .F16 : t.type == 30 ? .BF16 : .F32
            let info = TensorInfo(name: hf, dtype: dtype, shape: t.shape, elementCount: t.elementCount, byteCount: t.elementCount * dtype.size)
            if let h = permuteHeads, t.shape.count != 2 || t.shape[0] != h * headDim {
                throw SinkKitError(.shapeMismatch, "\(path): tensor \(t.name) has shape \(t.shape); expected \(h * headDim) rows (\(h) heads of \(headDim))")
            }
            map[hf] = (t, info, permuteHeads)
            names.append(hf)
        }
        if let v = try int("vocab_size", required: false) { config["vocab_size"] = v }
        else if let e = map[LlamaTensors.embed] { config["vocab_size"] = e.1.shape[0] }
        config["tie_word_embeddings"] = map[LlamaTensors.lmHead] == nil
        self.config = config
        self.headDim = headDim
        byName = map.mapValues { (tensor: $0.0, info: $0.1, heads: $0.2) }
        tensorNames = names
    }

    /// config.json's text.
    public func configJSON() throws -> String { try JSONWriter.string(config, pretty: true) }

    public func loadF32(_ name: String) throws -> Tensor {
        guard let e = byName[name] else { throw SinkKitError(.shapeMismatch, "\(gguf.path): tensor \(name) is missing") }
        let data = try gguf.dequantize(e.tensor)
        guard e.heads != nil else { return Tensor(shape: e.info.shape, data: data) }
        let rows = e.info.shape[0], cols = e.info.shape[1]
        var out = [Float](repeating: 0, count: data.count)
        data.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                GGMLBlocks.copyQKRows(from: src.baseAddress!, to: dst.baseAddress!, rows: rows, rowBytes: cols * 4, headDim: headDim, toLlamaCpp: false)
            }
        }
        return Tensor(shape: e.info.shape, data: out)
    }

    /// The tensor's stored blocks as SKM blocks of `type` at `group`, when the ggml block layout
    /// holds the same values (`GGMLBlocks`: Q8_0 as int8, Q4_0 as int4-sym, Q4_1 as int4, Q5_0 as
    /// int5-sym, all at group 32): the bytes are carried over (Q5_0's high bits moved after its
    /// nibbles), never re-quantized; q/k rows are reordered whole. nil when the layouts differ.
    public func carriedBlocks(_ name: String, type: QuantType, group: Int) throws -> [UInt8]? {
        guard group == 32, let e = byName[name], e.info.shape.count == 2, GGMLBlocks.skmType(ofGGML: e.tensor.type) == type else { return nil }
        let rows = e.info.shape[0], cols = e.info.shape[1]
        let raw = try gguf.rawBytes(e.tensor)
        defer { gguf.release(e.tensor) }
        let rowBytes = raw.count / rows
        guard rowBytes * rows == raw.count, type.byteCount(rows: rows, cols: cols, group: group) == raw.count else { return nil }
        var out = e.heads == nil ? Array(raw) : [UInt8](repeating: 0, count: raw.count)
        out.withUnsafeMutableBytes { dst in
            if e.heads != nil {
                GGMLBlocks.copyQKRows(from: raw.baseAddress!, to: dst.baseAddress!, rows: rows, rowBytes: rowBytes, headDim: headDim, toLlamaCpp: false)
            }
            if type == .int5Sym { GGMLBlocks.q5_0ToInt5Sym(dst) }
        }
        return out
    }

    /// The ggml type of a tensor, by its transformers name (for reports).
    public func storedTypeName(_ name: String) -> String? { byName[name].map { GGUFFile.typeName($0.tensor.type) } }
}
