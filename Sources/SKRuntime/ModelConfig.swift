import SKCore
import SKFormat

/// What the forward pass needs, read from an SKM file's `llama.*` metadata (Hugging Face names).
public struct ModelConfig {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    public var ropeScalingType: String
    public var ropeFactor: Double
    public var ropeLowFreqFactor: Double
    public var ropeHighFreqFactor: Double
    public var ropeOriginalMax: Int
    public var ropeBetaFast: Double
    public var ropeBetaSlow: Double
    public var tieWordEmbeddings: Bool
    public var attentionBias: Bool
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]

    public init(metadata m: [String: SKMValue], path: String) throws {
        func int(_ k: String) throws -> Int {
            guard let v = m["llama." + k]?.int, v > 0, v < Int64(Int32.max) else {
                throw SinkKitError(.config, "\(path): metadata llama.\(k) is missing or invalid")
            }
            return Int(v)
        }
        func dbl(_ k: String, _ def: Double) -> Double { m["llama." + k]?.double ?? def }
        hiddenSize = try int("hidden_size")
        intermediateSize = try int("intermediate_size")
        numLayers = try int("num_hidden_layers")
        numHeads = try int("num_attention_heads")
        numKVHeads = try int("num_key_value_heads")
        headDim = try int("head_dim")
        vocabSize = try int("vocab_size")
        maxPositionEmbeddings = try int("max_position_embeddings")
        guard numHeads % numKVHeads == 0, headDim % 2 == 0 else {
            throw SinkKitError(.config, "\(path): \(numHeads) heads / \(numKVHeads) KV heads / head_dim \(headDim) is not a valid GQA layout")
        }
        rmsNormEps = Float(dbl("rms_norm_eps", 1e-6))
        ropeTheta = dbl("rope_theta", 10000)
        ropeScalingType = m["llama.rope_scaling.type"]?.string ?? "none"
        ropeFactor = dbl("rope_scaling.factor", 1)
        ropeLowFreqFactor = dbl("rope_scaling.low_freq_factor", 1)
        ropeHighFreqFactor = dbl("rope_scaling.high_freq_factor", 4)
        ropeOriginalMax = Int(m["llama.rope_scaling.original_max_position_embeddings"]?.int ?? Int64(maxPositionEmbeddings))
        ropeBetaFast = dbl("rope_scaling.beta_fast", 32)
        ropeBetaSlow = dbl("rope_scaling.beta_slow", 1)
        tieWordEmbeddings = m["llama.tie_word_embeddings"]?.bool ?? false
        attentionBias = m["llama.attention_bias"]?.bool ?? false
        let bos = m["llama.bos_token_id"]?.int ?? -1
        bosTokenId = bos >= 0 ? Int(bos) : nil
        eosTokenIds = (m["llama.eos_token_ids"]?.intArray ?? []).map { Int($0) }
    }

    /// The context the model was trained for (linear scaling multiplies it).
    public var trainedContext: Int {
        ropeScalingType == "linear" ? Int((Double(maxPositionEmbeddings) * ropeFactor).rounded()) : maxPositionEmbeddings
    }
    public var qDim: Int { numHeads * headDim }
    public var kvDim: Int { numKVHeads * headDim }
}
