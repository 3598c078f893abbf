import SKCore
import SKFormat
import SKModel

/// The `llama.*` and `model.*` metadata of an SKM file (Formats/SKM.md, "Metadata keys"):
/// everything the runtime needs from config.json, with Hugging Face's names.
public enum ModelMetadata {
    public static func entries(_ c: LlamaConfig) throws -> [(String, SKMValue)] {
        var m: [(String, SKMValue)] = [
            ("model.architecture", .string("llama")),
            ("model.config", .string(String(decoding: try c.jsonData(), as: UTF8.self))),
            ("llama.hidden_size", .int(Int64(c.hiddenSize))),
            ("llama.intermediate_size", .int(Int64(c.intermediateSize))),
            ("llama.num_hidden_layers", .int(Int64(c.numHiddenLayers))),
            ("llama.num_attention_heads", .int(Int64(c.numAttentionHeads))),
            ("llama.num_key_value_heads", .int(Int64(c.numKeyValueHeads))),
            ("llama.head_dim", .int(Int64(c.headDim))),
            ("llama.vocab_size", .int(Int64(c.vocabSize))),
            ("llama.max_position_embeddings", .int(Int64(c.maxPositionEmbeddings))),
            ("llama.rms_norm_eps", .double(c.rmsNormEps)),
            ("llama.rope_theta", .double(c.ropeTheta)),
            ("llama.rope_scaling.type", .string(c.ropeScaling?.type ?? "none")),
            ("llama.tie_word_embeddings", .bool(c.tieWordEmbeddings)),
            ("llama.attention_bias", .bool(c.attentionBias)),
            ("llama.mlp_bias", .bool(c.mlpBias)),
            ("llama.bos_token_id", .int(Int64(c.bosTokenId ?? -1))),
            ("llama.eos_token_ids", .intArray(c.eosTokenIds.map(Int64.init))),
        ]
        if let s = c.ropeScaling {
            for (k, v) in [("factor", s.factor), ("low_freq_factor", s.lowFreqFactor), ("high_freq_factor", s.highFreqFactor),
                           ("beta_fast", s.betaFast), ("beta_slow", s.betaSlow)] {
                if let v { m.append(("llama.rope_scaling." + k, .double(v))) }
            }
            if let o = s.originalMaxPositionEmbeddings { m.append(("llama.rope_scaling.original_max_position_embeddings", .int(Int64(o)))) }
        }
        return m
    }
}
