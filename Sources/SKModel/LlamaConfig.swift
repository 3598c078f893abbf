#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKCore

/// RoPE scaling as transformers reads it from `rope_scaling` (either spelling of the type key:
/// `type` in older configs, `rope_type` in newer ones).
public struct RopeScaling: Equatable {
    public var type: String                 // linear, dynamic, llama3, yarn, default
    public var factor: Double?
    public var lowFreqFactor: Double?
    public var highFreqFactor: Double?
    public var originalMaxPositionEmbeddings: Int?
    public var betaFast: Double?
    public var betaSlow: Double?
    /// longrope (Phi-3): per-frequency divisors of the inverse frequencies, for sequences within
    /// `originalMaxPositionEmbeddings` (short) and beyond (long); the cos/sin multiplier.
    public var shortFactor: [Double]?
    public var longFactor: [Double]?
    public var attentionFactor: Double?

    public static let knownTypes: Set<String> = ["default", "linear", "dynamic", "llama3", "yarn", "longrope"]

    public init(type: String, factor: Double? = nil, lowFreqFactor: Double? = nil, highFreqFactor: Double? = nil,
                originalMaxPositionEmbeddings: Int? = nil, betaFast: Double? = nil, betaSlow: Double? = nil,
                shortFactor: [Double]? = nil, longFactor: [Double]? = nil, attentionFactor: Double? = nil) {
        self.type = type; self.factor = factor; self.lowFreqFactor = lowFreqFactor; self.highFreqFactor = highFreqFactor
        self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings; self.betaFast = betaFast; self.betaSlow = betaSlow
        self.shortFactor = shortFactor; self.longFactor = longFactor; self.attentionFactor = attentionFactor
    }
}

/// A LLaMA-family model config with Hugging Face's field names and defaults
/// (transformers `configuration_llama.py`). The raw JSON is kept so a merged model's
/// config.json changes only the fields the merge changes.
public struct LlamaConfig {
    public var raw: [String: Any]
    public let path: String

    public var modelType: String { family.modelType }
    /// The model family (`model_type`): what its block adds to LLaMA's (Families/).
    public var family: ModelFamily
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling?
    public var tieWordEmbeddings: Bool
    public var attentionBias: Bool
    public var mlpBias: Bool
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    /// Sliding-window attention span (Mistral's `sliding_window`): each query reads only the
    /// keys of the last `slidingWindow` positions. nil: full attention.
    public var slidingWindow: Int?
    /// Which layers the sliding window applies to (Gemma 2's `layer_types`); nil: every layer.
    public var slidingLayers: [Bool]?
    /// Gemma 2: attention scores and final logits soft-capped (`cap · tanh(x / cap)`), and the
    /// attention scale `query_pre_attn_scalar^-½` (nil: `head_dim^-½`).
    public var attnLogitSoftcapping: Double?
    public var finalLogitSoftcapping: Double?
    public var queryPreAttnScalar: Double?
    /// Qwen3's per-head RMSNorm of queries and keys (`self_attn.q_norm` / `k_norm`, over one head's
    /// `head_dim` elements, before RoPE).
    public var qkNorm: Bool { family.qkNorm }

    /// Architectures whose weights follow the LLaMA layout.
    public static var supportedModelTypes: Set<String> { Set(ModelFamily.all.map(\.modelType)) }

    public init(path: String) throws {
        try self.init(data: try InputFile.read(path, limit: Limits.maxJSONFileBytes), path: path)
    }

    /// Typed view of the fields we use; JSONDecoder is strict about types (a `true` is not
    /// an integer, `1` is not a boolean), which is what a config check needs.
    private struct Fields: Decodable {
        var model_type: String?
        var hidden_size, intermediate_size, num_hidden_layers, num_attention_heads: Int?
        var num_key_value_heads, head_dim, vocab_size, max_position_embeddings, bos_token_id, original_max_position_embeddings: Int?
        var rms_norm_eps, rope_theta: Double?
        var tie_word_embeddings, attention_bias, mlp_bias: Bool?
        var hidden_act, hidden_activation: String?
        var query_pre_attn_scalar, attn_logit_softcapping, final_logit_softcapping: Double?
        var use_bidirectional_attention: Bool?
        var partial_rotary_factor: Double?
        var use_sliding_window: Bool?
        var sliding_window: Int?
        var eos_token_id: EOS?
        var rope_scaling: Rope?
        var rope_parameters: Rope?

        enum EOS: Decodable {
            case one(Int), many([Int])
            init(from d: Decoder) throws {
                let c = try d.singleValueContainer()
                if let i = try? c.decode(Int.self) { self = .one(i) } else { self = .many(try c.decode([Int].self)) }
            }
        }
        struct Rope: Decodable {
            var type, rope_type: String?
            var factor, low_freq_factor, high_freq_factor, beta_fast, beta_slow: Double?
            var original_max_position_embeddings: Int?
            var rope_theta: Double?
            var attention_factor, mscale, mscale_all_dim, partial_rotary_factor: Double?
            var short_factor, long_factor: [Double]?
            var truncate: Bool?
        }
    }

    public init(data: Data, path: String = "config.json") throws {
        self.path = path
        raw = try StrictJSON.object(data, path: path, kind: .config)
        let f: Fields
        do { f = try JSONDecoder().decode(Fields.self, from: data) } catch {
            var field = ""
            if case .typeMismatch(let t, let c)? = error as? DecodingError {
                field = c.codingPath.map(\.stringValue).joined(separator: ".") + " must be \(t)"
            } else if case .dataCorrupted(let c)? = error as? DecodingError {
                field = c.codingPath.map(\.stringValue).joined(separator: ".") + ": " + c.debugDescription
            }
            throw SinkKitError(.config, "\(path): invalid field \(field.isEmpty ? "\(error)" : field)")
        }
        func required(_ v: Int?, _ key: String, max: Int) throws -> Int {
            guard let v else { throw SinkKitError(.config, "\(path): missing required field \(key)") }
            guard v > 0 else { throw SinkKitError(.config, "\(path): \(key) must be positive, found \(v)") }
            guard v <= max else { throw SinkKitError(.config, "\(path): \(key) \(v) is larger than any model SinkKit runs (at most \(max))") }
            return v
        }
        let type = f.model_type ?? ""
        guard let family = ModelFamily.named(type) else {
            throw SinkKitError(.config, "\(path): model_type \"\(type)\" is not a LLaMA-family model (expected one of \(Self.supportedModelTypes.sorted().joined(separator: ", ")))")
        }
        self.family = family
        hiddenSize = try required(f.hidden_size, "hidden_size", max: Limits.maxHiddenSize)
        intermediateSize = try required(f.intermediate_size, "intermediate_size", max: Limits.maxIntermediateSize)
        numHiddenLayers = try required(f.num_hidden_layers, "num_hidden_layers", max: Limits.maxLayers)
        numAttentionHeads = try required(f.num_attention_heads, "num_attention_heads", max: Limits.maxHeads)
        numKeyValueHeads = try required(f.num_key_value_heads ?? numAttentionHeads, "num_key_value_heads", max: Limits.maxHeads)
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw SinkKitError(.config, "\(path): num_attention_heads \(numAttentionHeads) is not a multiple of num_key_value_heads \(numKeyValueHeads)")
        }
        if let hd = f.head_dim {
            headDim = try required(hd, "head_dim", max: Limits.maxHeadDim)
        } else {
            guard hiddenSize % numAttentionHeads == 0 else {
                throw SinkKitError(.config, "\(path): hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads) and no head_dim is given")
            }
            headDim = try required(hiddenSize / numAttentionHeads, "hidden_size / num_attention_heads", max: Limits.maxHeadDim)
        }
        guard headDim % 2 == 0 else { throw SinkKitError(.config, "\(path): head_dim \(headDim) must be even (RoPE rotates pairs)") }
        vocabSize = try required(f.vocab_size, "vocab_size", max: Limits.maxVocab)
        maxPositionEmbeddings = try required(f.max_position_embeddings, "max_position_embeddings", max: Limits.maxPositions)
        rmsNormEps = f.rms_norm_eps ?? 1e-6
        guard rmsNormEps > 0, rmsNormEps < 1 else {
            throw SinkKitError(.config, "\(path): rms_norm_eps must be in (0, 1), found \(rmsNormEps)")
        }
        ropeTheta = f.rope_theta ?? f.rope_parameters?.rope_theta ?? 10000
        guard ropeTheta > 1, ropeTheta.isFinite, ropeTheta < 1e12 else {
            throw SinkKitError(.config, "\(path): rope_theta must be a finite number above 1, found \(ropeTheta)")
        }
        tieWordEmbeddings = f.tie_word_embeddings ?? family.defaultTiedEmbeddings
        attentionBias = f.attention_bias ?? family.defaultAttentionBias
        mlpBias = f.mlp_bias ?? false
        bosTokenId = f.bos_token_id
        switch f.eos_token_id {
        case .one(let i)?: eosTokenIds = [i]
        case .many(let l)?: eosTokenIds = l
        case nil: eosTokenIds = []
        }
        for (key, id) in [("bos_token_id", bosTokenId)] + eosTokenIds.map({ ("eos_token_id", $0) }) {
            if let id, id < 0 || id >= vocabSize {
                throw SinkKitError(.config, "\(path): \(key) \(id) lies outside the vocabulary (vocab_size \(vocabSize))")
            }
        }
        guard eosTokenIds.count <= 64 else { throw SinkKitError(.config, "\(path): eos_token_id lists \(eosTokenIds.count) ids (at most 64)") }

        // Fields that change what the model computes: implemented, or refused by name.
        // Gemma reads hidden_activation (hidden_act is a legacy spelling it ignores)
        let actField = family.activation == .geluTanh && f.hidden_activation != nil ? "hidden_activation" : "hidden_act"
        if let act = actField == "hidden_activation" ? f.hidden_activation : f.hidden_act, act != family.activation.rawValue {
            throw SinkKitError(.config, "\(path): \(actField) \"\(act.prefix(40))\" is not supported for \(family.name) (expected \(family.activation.rawValue))")
        }
        if f.use_bidirectional_attention == true {
            throw SinkKitError(.config, "\(path): use_bidirectional_attention is not supported (causal attention only)")
        }
        if family.sandwichNorms {
            queryPreAttnScalar = f.query_pre_attn_scalar
            attnLogitSoftcapping = f.attn_logit_softcapping
            finalLogitSoftcapping = f.final_logit_softcapping
            for (k, v) in [("query_pre_attn_scalar", queryPreAttnScalar), ("attn_logit_softcapping", attnLogitSoftcapping), ("final_logit_softcapping", finalLogitSoftcapping)] {
                if let v, !(v.isFinite && v > 0 && v < 1e6) { throw SinkKitError(.config, "\(path): \(k) must be a positive number, found \(v)") }
            }
        } else {
            for (k, v) in [("query_pre_attn_scalar", f.query_pre_attn_scalar), ("attn_logit_softcapping", f.attn_logit_softcapping), ("final_logit_softcapping", f.final_logit_softcapping)] where v != nil {
                throw SinkKitError(.config, "\(path): \(k) is not part of a \(family.name) model")
            }
        }
        if raw["quantization_config"] != nil {
            throw SinkKitError(.config, "\(path): this checkpoint is quantized (quantization_config); give SinkKit the float (F32/F16/BF16) weights")
        }
        if let p = f.partial_rotary_factor, p != 1 {
            throw SinkKitError(.config, "\(path): partial_rotary_factor \(p) is not supported (RoPE over the whole head only)")
        }
        if family.slidingWindow == .refusedWhenEnabled, f.use_sliding_window == true {
            throw SinkKitError(.config, "\(path): use_sliding_window (\(family.name)'s per-layer sliding window) is not supported")
        }
        let layerTypes = raw["layer_types"] as? [Any]
        if family.slidingWindow == .byLayerTypes {
            let types = layerTypes ?? []
            guard types.count == numHiddenLayers, types.allSatisfy({ ($0 as? String) == "full_attention" || ($0 as? String) == "sliding_attention" }) else {
                throw SinkKitError(.config, "\(path): layer_types must name each of the \(numHiddenLayers) layers full_attention or sliding_attention")
            }
            let sliding = types.map { ($0 as? String) == "sliding_attention" }
            if sliding.contains(true), let w = f.sliding_window {
                slidingWindow = try required(w, "sliding_window", max: Limits.maxPositions)
                slidingLayers = sliding
            } else {
                guard !sliding.contains(true) else { throw SinkKitError(.config, "\(path): layer_types has sliding_attention layers but no sliding_window") }
                slidingWindow = nil
            }
        } else {
            if let types = layerTypes, let other = types.first(where: { ($0 as? String) != "full_attention" }) {
                throw SinkKitError(.config, "\(path): layer_types has a \(String(describing: other).prefix(40)) layer; only full_attention layers are supported")
            }
            if family.slidingWindow == .everyLayer, let w = f.sliding_window {
                slidingWindow = try required(w, "sliding_window", max: Limits.maxPositions)
            } else {
                slidingWindow = nil
            }
        }
        // transformers >= 5 writes `rope_parameters` (rope_type, rope_theta, factor, ...) where
        // older configs have `rope_theta` + `rope_scaling`; both are read, rope_scaling first.
        if let r = f.rope_scaling ?? f.rope_parameters, (r.rope_type ?? r.type) != "default" || f.rope_scaling != nil {
            guard var type = r.rope_type ?? r.type else { throw SinkKitError(.config, "\(path): rope_scaling has neither rope_type nor type") }
            if type == "su" { type = "longrope" }   // Phi-3's first name for it (transformers maps it too)
            for (k, v) in [("attention_factor", type == "longrope" ? nil : r.attention_factor), ("mscale", r.mscale), ("mscale_all_dim", r.mscale_all_dim)] where v != nil {
                throw SinkKitError(.config, "\(path): rope_scaling.\(k) is not supported")
            }
            if let p = r.partial_rotary_factor, p != 1 {
                throw SinkKitError(.config, "\(path): rope partial_rotary_factor \(p) is not supported (RoPE over the whole head only)")
            }
            if r.truncate == false { throw SinkKitError(.config, "\(path): rope_scaling.truncate false is not supported") }
            let s = RopeScaling(type: type, factor: r.factor, lowFreqFactor: r.low_freq_factor, highFreqFactor: r.high_freq_factor,
                                originalMaxPositionEmbeddings: r.original_max_position_embeddings ?? (type == "longrope" ? f.original_max_position_embeddings : nil),
                                betaFast: r.beta_fast, betaSlow: r.beta_slow,
                                shortFactor: r.short_factor, longFactor: r.long_factor, attentionFactor: r.attention_factor)
            try Self.check(s, path: path, headDim: headDim)
            ropeScaling = s
        } else {
            ropeScaling = nil
        }
        // Derived sizes the readers multiply: within Int, with room to spare.
        _ = try Checked.mul(numAttentionHeads, headDim, "\(path): num_attention_heads × head_dim")
        _ = try Checked.mul(try Checked.mul(vocabSize, hiddenSize, "\(path): vocab_size × hidden_size"), 4, path)
        _ = try Checked.mul(try Checked.mul(intermediateSize, hiddenSize, "\(path): intermediate_size × hidden_size"), 4, path)
        _ = try Checked.mul(trainedContext, 4, "\(path): trained context")
    }

    static func check(_ s: RopeScaling, path: String, headDim: Int) throws {
        guard RopeScaling.knownTypes.contains(s.type) else {
            throw SinkKitError(.config, "\(path): rope_scaling type \"\(s.type)\" is not supported (expected one of \(RopeScaling.knownTypes.sorted().joined(separator: ", ")))")
        }
        if s.type == "longrope" {
            for (k, v) in [("short_factor", s.shortFactor), ("long_factor", s.longFactor)] {
                guard let v, v.count == headDim / 2, v.allSatisfy({ $0.isFinite && $0 > 0 && $0 <= Limits.maxRopeFactor }) else {
                    throw SinkKitError(.config, "\(path): longrope rope_scaling.\(k) must list head_dim/2 = \(headDim / 2) positive factors up to \(Int(Limits.maxRopeFactor))")
                }
            }
            guard s.originalMaxPositionEmbeddings != nil else {
                throw SinkKitError(.config, "\(path): longrope needs original_max_position_embeddings")
            }
            if let a = s.attentionFactor, !(a.isFinite && a > 0 && a <= 100) {
                throw SinkKitError(.config, "\(path): longrope attention_factor must be a positive number up to 100, found \(a)")
            }
        } else if s.shortFactor != nil || s.longFactor != nil {
            throw SinkKitError(.config, "\(path): short_factor/long_factor belong to longrope, not \(s.type)")
        }
        if s.type != "default" && s.type != "longrope" {
            guard let f = s.factor, f >= 1, f <= Limits.maxRopeFactor else {
                throw SinkKitError(.config, "\(path): rope_scaling \(s.type) needs a factor between 1 and \(Int(Limits.maxRopeFactor))")
            }
        }
        for (k, v) in [("low_freq_factor", s.lowFreqFactor), ("high_freq_factor", s.highFreqFactor), ("beta_fast", s.betaFast), ("beta_slow", s.betaSlow)] {
            if let v, !(v > 0 && v <= Limits.maxRopeFactor) {
                throw SinkKitError(.config, "\(path): rope_scaling.\(k) must be a positive number up to \(Int(Limits.maxRopeFactor)), found \(v)")
            }
        }
        if let o = s.originalMaxPositionEmbeddings, o <= 0 || o > Limits.maxPositions {
            throw SinkKitError(.config, "\(path): rope_scaling.original_max_position_embeddings must be in 1...\(Limits.maxPositions), found \(o)")
        }
        if s.type == "llama3" {
            guard let lo = s.lowFreqFactor, let hi = s.highFreqFactor, s.originalMaxPositionEmbeddings != nil else {
                throw SinkKitError(.config, "\(path): llama3 rope_scaling needs low_freq_factor, high_freq_factor and original_max_position_embeddings")
            }
            guard hi > lo else { throw SinkKitError(.config, "\(path): llama3 rope_scaling needs high_freq_factor > low_freq_factor (found \(hi) and \(lo))") }
        }
        if s.type == "yarn", let f = s.betaFast, let sl = s.betaSlow, f <= sl {
            throw SinkKitError(.config, "\(path): yarn rope_scaling needs beta_fast > beta_slow (found \(f) and \(sl))")
        }
    }

    /// Whether this config keeps RoPE settings in transformers 5's `rope_parameters`.
    public var usesRopeParameters: Bool { raw["rope_parameters"] is [String: Any] && raw["rope_scaling"] == nil }

    /// Context the model was trained for: `max_position_embeddings`, times the factor of
    /// linear RoPE scaling (LongLoRA keeps max_position_embeddings and scales positions).
    public var trainedContext: Int {
        if let s = ropeScaling, s.type == "linear", let f = s.factor { return Int(min((Double(maxPositionEmbeddings) * f).rounded(), Double(Limits.maxPositions) * Limits.maxRopeFactor)) }
        return maxPositionEmbeddings
    }

    public var qDim: Int { numAttentionHeads * headDim }
    public var kvDim: Int { numKeyValueHeads * headDim }

    /// config.json text with sorted keys, as written into merged models.
    public func jsonData() throws -> Data {
        do {
            return try JSONWriter.data(raw, pretty: true)
        } catch {
            throw SinkKitError(.config, "cannot serialise config: \(error)")
        }
    }
}
