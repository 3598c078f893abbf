/// Sums of squares of every input channel of every matmul, over all rows a session feeds through
/// it: what `skconv calibrate` collects for an importance matrix (llama.cpp's imatrix is the same
/// statistic). Attach to a session (`Session.activationStatistics`) before running text through it.
public final class ActivationStatistics {
    /// Weight name → Σ x² per input column.
    public private(set) var sums: [String: [Double]] = [:]
    /// Weight name → rows seen.
    public private(set) var rows: [String: Int] = [:]

    public init() {}

    func add(_ weight: String, _ x: UnsafePointer<Float>, rows n: Int, cols: Int) {
        var s = sums[weight] ?? [Double](repeating: 0, count: cols)
        s.withUnsafeMutableBufferPointer { sp in
            for r in 0..<n {
                let row = x + r * cols
                for c in 0..<cols { let v = Double(row[c]); sp[c] += v * v }
            }
        }
        sums[weight] = s
        rows[weight, default: 0] += n
    }

    /// Mean squares per weight (Σ x² / rows).
    public var meanSquares: [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (k, s) in sums { let n = Double(max(1, rows[k] ?? 1)); out[k] = s.map { Float($0 / n) } }
        return out
    }
}
