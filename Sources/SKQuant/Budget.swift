/// Named error budgets, enforced by tests (Tests/SKQuantTests): the RMSE of SinkKit's
/// quantizers relative to plain round-to-nearest baselines on data that does not already sit
/// on a 4-bit grid (Gaussian rows, heavy-tailed rows, the real model's 8-bit-grid embedding).
public enum Budget {
    /// int8 RMSE ≤ 1.01 × a plain numpy Q8_0 quantizer.
    public static let int8VsQ8_0 = 1.01
    /// searched int4 RMSE ≤ 0.9 × round-to-nearest with a min-max scale (ggml's Q4_1 reference),
    /// and searched int4-sym RMSE ≤ 0.9 × round-to-nearest with a max-abs scale (`amax / 7`).
    public static let int4VsRoundToNearest = 0.9
    /// searched int4-sym is never worse than ggml's Q4_0 reference, which already maps the
    /// signed extreme to −8 (measured 0.94–0.97: the search gains less on top of that trick).
    public static let int4SymVsQ4_0 = 1.0
    /// searched int5-sym is never worse than ggml's Q5_0 reference (`max / −16`), and at most
    /// 0.6 × searched int4-sym's RMSE (one more bit: about half the step).
    public static let int5SymVsQ5_0 = 1.0
    public static let int5SymVsInt4Sym = 0.6
}
