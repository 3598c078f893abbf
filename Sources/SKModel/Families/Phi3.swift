extension ModelFamily {
    /// Phi-3 / Phi-3.5 mini: the Llama block with fused projections in the checkpoint
    /// (`self_attn.qkv_proj` = q, k, v rows; `mlp.gate_up_proj` = gate, up rows; PEFT targets the
    /// fused modules), stored split in SKM files; `longrope` ("su") RoPE; `sliding_window` on every
    /// layer (Phi-3-mini-4k: 2047).
    public static let phi3 = ModelFamily(modelType: "phi3", name: "Phi-3", defaultAttentionBias: false, outputBias: true,
                                         qkNorm: false, slidingWindow: .everyLayer, fusedProjections: true)
}
