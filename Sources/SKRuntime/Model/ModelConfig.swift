import SKCore
import SKModel

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
    /// longrope: inverse-frequency divisors within / beyond `ropeOriginalMax`, and the cos/sin
    /// multiplier (nil: √(1 + ln(s) / ln(original)) with s = max positions / original).
    public var ropeShortFactor: [Double]
    public var ropeLongFactor: [Double]
    public var ropeAttentionFactor: Double?
    public var tieWordEmbeddings: Bool
    public var attentionBias: Bool
    public var mlpBias: Bool
    /// Mistral's sliding window (contexts are limited to it: the windowed mask is not implemented).
    public var slidingWindow: Int?
    /// Qwen3's per-head RMSNorm of queries and keys before RoPE.
    public var qkNorm: Bool { family.qkNorm }
    /// The family's block (Gemma 2's activation, norm offset, embedding scale, sandwich norms).
    public var family: ModelFamily
    /// Layers the sliding window applies to (nil: every layer, when there is a window).
    public var slidingLayers: [Bool]?
    /// Attention scores' multiplier: `query_pre_attn_scalar^-½` or `head_dim^-½`.
    public var attentionScale: Float
    /// Soft-capping (`cap · tanh(x / cap)`) of attention scores and of the final logits.
    public var attnSoftcap: Float?
    public var finalSoftcap: Float?
    /// The context the model was trained for (linear scaling multiplies it).
    public var trainedContext: Int
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]

    /// Read through `LlamaConfig(metadata:path:)`: the converter's validation of config.json,
    /// and every `llama.*` key checked against it.
    public init(metadata m: [String: SKMValue], path: String) throws {
        let c = try LlamaConfig(metadata: m, path: path)
        hiddenSize = c.hiddenSize
        intermediateSize = c.intermediateSize
        numLayers = c.numHiddenLayers
        numHeads = c.numAttentionHeads
        numKVHeads = c.numKeyValueHeads
        headDim = c.headDim
        vocabSize = c.vocabSize
        maxPositionEmbeddings = c.maxPositionEmbeddings
        rmsNormEps = Float(c.rmsNormEps)
        ropeTheta = c.ropeTheta
        let r = c.ropeScaling
        ropeScalingType = r?.type ?? "none"
        ropeFactor = r?.factor ?? 1
        ropeLowFreqFactor = r?.lowFreqFactor ?? 1
        ropeHighFreqFactor = r?.highFreqFactor ?? 4
        ropeOriginalMax = r?.originalMaxPositionEmbeddings ?? maxPositionEmbeddings
        ropeBetaFast = r?.betaFast ?? 32
        ropeBetaSlow = r?.betaSlow ?? 1
        ropeShortFactor = r?.shortFactor ?? []
        ropeLongFactor = r?.longFactor ?? []
        ropeAttentionFactor = r?.attentionFactor
        tieWordEmbeddings = c.tieWordEmbeddings
        attentionBias = c.attentionBias
        mlpBias = c.mlpBias
        slidingWindow = c.slidingWindow
        family = c.family
        slidingLayers = c.slidingLayers
        attentionScale = 1 / Float(c.queryPreAttnScalar ?? Double(c.headDim)).squareRoot()
        attnSoftcap = c.attnLogitSoftcapping.map { Float($0) }
        finalSoftcap = c.finalLogitSoftcapping.map { Float($0) }
        bosTokenId = c.bosTokenId
        eosTokenIds = c.eosTokenIds
        trainedContext = c.trainedContext
    }

    /// The sliding window of layer `l` (nil: full attention there).
    public func slidingWindow(layer l: Int) -> Int? {
        guard let w = slidingWindow else { return nil }
        return slidingLayers.map { $0[l] ? w : nil } ?? w
    }

    public var qDim: Int { numHeads * headDim }
    public var kvDim: Int { numKVHeads * headDim }
}
