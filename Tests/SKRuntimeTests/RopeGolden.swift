/// Inverse frequencies from transformers' ROPE_INIT_FUNCTIONS["llama3"] (head_dim 8, theta 10000,
/// factor 8, low_freq_factor 1, high_freq_factor 4, original_max_position_embeddings 16), f32 values.
enum RopeGolden {
    static let llama3: [Double] = [0.5760563611984253, 0.012500000186264515, 0.0012499999720603228, 0.0001250000059371814]
}
