/// Inverse frequencies from transformers' ROPE_INIT_FUNCTIONS["llama3"] (head_dim 8, theta 10000,
/// factor 8, low_freq_factor 1, high_freq_factor 4, original_max_position_embeddings 16), f32 values.
enum RopeGolden {
    static let llama3: [Double] = [0.5760563611984253, 0.012500000186264515, 0.0012499999720603228, 0.0001250000059371814]
    /// yarn: factor 4, original_max_position_embeddings 16, beta_fast 32, beta_slow 1 (and its attention factor)
    static let yarn: [Double] = [1.0, 0.02500000037252903, 0.0024999999441206455, 0.0002500000118743628]
    static let yarnAttentionFactor = 1.138629436111989
    /// dynamic: factor 2, max_position_embeddings 16, at a sequence length of 40
    static let dynamic40: [Double] = [1.0, 0.06299605220556259, 0.00396850286051631, 0.0002500000118743628]
}
