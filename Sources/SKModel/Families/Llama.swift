extension ModelFamily {
    /// Llama 2 / 3.x (and SmolLM2, TinyLlama, …): the reference block. RoPE variants (linear,
    /// dynamic, llama3, yarn) are config fields every family shares (`RopeScaling`).
    public static let llama = ModelFamily(modelType: "llama", name: "Llama", defaultAttentionBias: false, outputBias: true,
                                          qkNorm: false, slidingWindow: .none)
}
