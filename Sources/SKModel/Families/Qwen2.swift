extension ModelFamily {
    /// Qwen2 / Qwen2.5: q/k/v biases (o_proj none); its optional per-layer sliding window is refused.
    public static let qwen2 = ModelFamily(modelType: "qwen2", name: "Qwen2", defaultAttentionBias: true, outputBias: false,
                                          qkNorm: false, slidingWindow: .refusedWhenEnabled)
}
