extension ModelFamily {
    /// Gemma 2: GeGLU (tanh-approximated GELU), RMSNorms that scale by `1 + w` before and after
    /// both attention and MLP (`input_layernorm`, `post_attention_layernorm`,
    /// `pre_feedforward_layernorm`, `post_feedforward_layernorm`), embeddings times √hidden,
    /// attention scaled by `query_pre_attn_scalar^-½` and soft-capped (`attn_logit_softcapping`),
    /// final logits soft-capped (`final_logit_softcapping`), a sliding window on the layers
    /// `layer_types` names `sliding_attention` (alternate layers); tied embeddings by default.
    public static let gemma2 = ModelFamily(modelType: "gemma2", name: "Gemma 2", defaultAttentionBias: false, outputBias: true,
                                           qkNorm: false, slidingWindow: .byLayerTypes, activation: .geluTanh,
                                           normWeightOffset: 1, scalesEmbedding: true, sandwichNorms: true, defaultTiedEmbeddings: true)
}
