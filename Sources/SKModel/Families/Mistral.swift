extension ModelFamily {
    /// Mistral: the Llama block with sliding-window attention on every layer (`sliding_window`).
    public static let mistral = ModelFamily(modelType: "mistral", name: "Mistral", defaultAttentionBias: false, outputBias: true,
                                            qkNorm: false, slidingWindow: .everyLayer)
}
