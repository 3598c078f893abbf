#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKCore

/// The `llama.*` and `model.*` metadata of an SKM file (Formats/SKM.md, "Metadata keys"): written
/// by the converter from a validated config, and read back by the runtime through the same
/// validation, so a hand-made file is refused for exactly what `skconv quantize` refuses.
extension LlamaConfig {
    public static let architecture = "llama"

    /// The metadata entries of this config.
    public func metadataEntries() throws -> [(String, SKMValue)] {
        var m: [(String, SKMValue)] = [
            ("model.architecture", .string(Self.architecture)),
            ("model.config", .string(String(decoding: try jsonData(), as: UTF8.self))),
        ]
        m += hyperparameterEntries()
        return m
    }

    /// The `llama.*` entries: what the runtime needs, with Hugging Face's names.
    func hyperparameterEntries() -> [(String, SKMValue)] {
        var m: [(String, SKMValue)] = [
            ("llama.hidden_size", .int(Int64(hiddenSize))),
            ("llama.intermediate_size", .int(Int64(intermediateSize))),
            ("llama.num_hidden_layers", .int(Int64(numHiddenLayers))),
            ("llama.num_attention_heads", .int(Int64(numAttentionHeads))),
            ("llama.num_key_value_heads", .int(Int64(numKeyValueHeads))),
            ("llama.head_dim", .int(Int64(headDim))),
            ("llama.vocab_size", .int(Int64(vocabSize))),
            ("llama.max_position_embeddings", .int(Int64(maxPositionEmbeddings))),
            ("llama.rms_norm_eps", .double(rmsNormEps)),
            ("llama.rope_theta", .double(ropeTheta)),
            ("llama.rope_scaling.type", .string(ropeScaling?.type ?? "none")),
            ("llama.tie_word_embeddings", .bool(tieWordEmbeddings)),
            ("llama.attention_bias", .bool(attentionBias)),
            ("llama.mlp_bias", .bool(mlpBias)),
            ("llama.bos_token_id", .int(Int64(bosTokenId ?? -1))),
            ("llama.eos_token_ids", .intArray(eosTokenIds.map(Int64.init))),
        ]
        if let s = ropeScaling {
            for (k, v) in [("factor", s.factor), ("low_freq_factor", s.lowFreqFactor), ("high_freq_factor", s.highFreqFactor),
                           ("beta_fast", s.betaFast), ("beta_slow", s.betaSlow)] {
                if let v { m.append(("llama.rope_scaling." + k, .double(v))) }
            }
            if let o = s.originalMaxPositionEmbeddings { m.append(("llama.rope_scaling.original_max_position_embeddings", .int(Int64(o)))) }
        }
        if let w = slidingWindow { m.append(("llama.sliding_window", .int(Int64(w)))) }
        if qkNorm { m.append(("llama.qk_norm", .bool(true))) }
        if let s = slidingLayers { m.append(("llama.sliding_window_layers", .intArray(s.map { $0 ? 1 : 0 }))) }
        for (k, v) in [("attn_logit_softcapping", attnLogitSoftcapping), ("final_logit_softcapping", finalLogitSoftcapping),
                       ("query_pre_attn_scalar", queryPreAttnScalar)] {
            if let v { m.append(("llama." + k, .double(v))) }
        }
        return m
    }

    /// The config of an SKM file: `model.config` (the complete config.json) through the same
    /// checks as the converter's, and every `llama.*` key equal to what that config implies
    /// (none missing, none extra), so the two can never say different things.
    public init(metadata m: [String: SKMValue], path: String) throws {
        guard let arch = m["model.architecture"]?.string else {
            throw SinkKitError(.config, "\(path): metadata model.architecture is missing")
        }
        guard arch == Self.architecture else {
            throw SinkKitError(.config, "\(path): model.architecture is \"\(arch.prefix(40))\"; this runtime runs \"\(Self.architecture)\" models")
        }
        guard let text = m["model.config"]?.string else {
            throw SinkKitError(.config, "\(path): metadata model.config (the model's config.json) is missing")
        }
        guard text.utf8.count <= Limits.maxJSONFileBytes else {
            throw SinkKitError(.config, "\(path): metadata model.config is \(text.utf8.count) bytes, more than a config.json may have")
        }
        try self.init(data: Data(text.utf8), path: "\(path): model.config")
        let expected = hyperparameterEntries()
        let names = Set(expected.map(\.0))
        for (k, v) in expected {
            guard let got = m[k] else { throw SinkKitError(.config, "\(path): metadata \(k) is missing (model.config implies \(Self.describe(v)))") }
            guard got == v else {
                throw SinkKitError(.config, "\(path): metadata \(k) is \(Self.describe(got)) but model.config implies \(Self.describe(v))")
            }
        }
        for k in m.keys.sorted() where k.hasPrefix("llama.") && !names.contains(k) {
            throw SinkKitError(.config, "\(path): metadata \(k) is not implied by model.config (refused rather than ignored)")
        }
    }

    static func describe(_ v: SKMValue) -> String {
        switch v {
        case .bool(let b): return "\(b)"
        case .int(let i): return "\(i)"
        case .double(let d): return "\(d)"
        case .string(let s): return "\"\(s.prefix(60))\""
        case .intArray(let a): return "\(a.prefix(8))"
        case .doubleArray(let a): return "\(a.prefix(8))"
        case .stringArray(let a): return "[\(a.count) strings]"
        }
    }
}
