extension ModelFamily {
    /// Qwen3: no q/k/v biases by default; a per-head RMSNorm of queries and keys before RoPE
    /// (`self_attn.q_norm`, `k_norm`, over `head_dim`, which may differ from hidden_size / heads).
    public static let qwen3 = ModelFamily(modelType: "qwen3", name: "Qwen3", defaultAttentionBias: false, outputBias: true,
                                          qkNorm: true, slidingWindow: .refusedWhenEnabled)
}
