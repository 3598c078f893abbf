/// What sets one model family's block apart from LLaMA's, in one place that the converter (config
/// checks, expected tensors) and the runtime (through `LlamaConfig`) both read. A family is a
/// `config.json` `model_type`; adding one is a file in this folder, an entry in `all`, and its
/// tests against transformers (Fixtures/generate_families.py, Tests/SKRuntimeTests/FamilyTests).
/// Config fields a family does not describe and that change the math are refused by name in
/// `LlamaConfig`, never ignored.
public struct ModelFamily: Sendable, Equatable {
    /// How a family reads `sliding_window`.
    public enum SlidingWindow: Sendable, Equatable {
        /// No sliding window: the field is not part of the model.
        case none
        /// `sliding_window` (when set) bounds every layer's attention (Mistral).
        case everyLayer
        /// Only when `use_sliding_window` is true, on some layers (Qwen2/Qwen3): refused then.
        case refusedWhenEnabled
        /// `sliding_window` on the layers `layer_types` marks `sliding_attention` (Gemma 2).
        case byLayerTypes
    }

    /// The MLP's gate activation (`hidden_act` / `hidden_activation`).
    public enum Activation: String, Sendable, Equatable {
        case silu
        case geluTanh = "gelu_pytorch_tanh"
    }

    /// `model_type` in config.json.
    public let modelType: String
    /// The family's name in messages and the README.
    public let name: String
    /// q/k/v biases when config.json has no `attention_bias`.
    public let defaultAttentionBias: Bool
    /// Whether `attention_bias` gives o_proj a bias too (Llama's rule; Qwen2's o_proj never has one).
    public let outputBias: Bool
    /// A per-head RMSNorm of queries and keys before RoPE (`self_attn.q_norm` / `k_norm`, Qwen3).
    public let qkNorm: Bool
    public let slidingWindow: SlidingWindow
    /// The checkpoint fuses q/k/v into `self_attn.qkv_proj` and gate/up into `mlp.gate_up_proj`
    /// (rows in that order); SKM files store the parts (`LlamaTensors.fusedParts`).
    public let fusedProjections: Bool
    public let activation: Activation
    /// RMSNorms scale by `offset + w` (Gemma: 1; the runtime adds it to the weights at load).
    public let normWeightOffset: Float
    /// Embeddings are multiplied by √hidden_size (Gemma).
    public let scalesEmbedding: Bool
    /// Norms after attention and after the MLP too (Gemma 2: `post_attention_layernorm` is the
    /// attention output's norm, `pre_feedforward_layernorm` / `post_feedforward_layernorm` the MLP's).
    public let sandwichNorms: Bool
    /// `tie_word_embeddings` when config.json does not say.
    public let defaultTiedEmbeddings: Bool

    public init(modelType: String, name: String, defaultAttentionBias: Bool, outputBias: Bool, qkNorm: Bool,
                slidingWindow: SlidingWindow, fusedProjections: Bool = false, activation: Activation = .silu,
                normWeightOffset: Float = 0, scalesEmbedding: Bool = false, sandwichNorms: Bool = false, defaultTiedEmbeddings: Bool = false) {
        self.modelType = modelType; self.name = name; self.defaultAttentionBias = defaultAttentionBias
        self.outputBias = outputBias; self.qkNorm = qkNorm; self.slidingWindow = slidingWindow
        self.fusedProjections = fusedProjections; self.activation = activation; self.normWeightOffset = normWeightOffset
        self.scalesEmbedding = scalesEmbedding; self.sandwichNorms = sandwichNorms; self.defaultTiedEmbeddings = defaultTiedEmbeddings
    }

    /// Every family SinkKit runs.
    public static let all: [ModelFamily] = [.llama, .mistral, .qwen2, .qwen3, .phi3, .gemma2]

    public static func named(_ modelType: String) -> ModelFamily? { all.first { $0.modelType == modelType } }
}
