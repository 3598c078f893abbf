/// How a SnapKV-style policy splits its KV budget (mean B slots per layer and KV head, the same
/// total in every case):
/// - `uniform` (SnapKV): B for every layer and head.
/// - `pyramid` (PyramidKV, arXiv 2406.02069): lower layers, whose attention is spread, get more;
///   upper layers, whose attention is focused, less. Budgets fall linearly from `2B − B_top` at
///   layer 0 to `B_top = B/β` (β = 20, the paper's) at the last layer, B_top raised to the smallest
///   budget the rule can keep; rounded so they sum to L·B exactly.
/// - `adaptive` (Ada-KV, arXiv 2407.11550): every layer has B per head on average, but its heads
///   share the layer's budget: after a floor of 20% of each head's share (Ada-KV's safeguard), the
///   best-scored candidates of all heads together are kept, a head holding at most twice its share.
public enum KVBudgetAllocation: String, Sendable, CaseIterable {
    case uniform, pyramid, adaptive

    /// PyramidKV's β.
    public static let pyramidBeta = 20.0
    /// Ada-KV's floor: the fraction of its share every head keeps.
    public static let adaptiveFloor = 0.2

    /// The policy name this allocation gives SnapKV's selection (`--kv`).
    public var policyName: String {
        switch self {
        case .uniform: return "snapkv"
        case .pyramid: return "pyramidkv"
        case .adaptive: return "adakv"
        }
    }

    /// Per-layer budgets per KV head, mean `mean`, none below `minimum`.
    public func layerBudgets(mean b: Int, layers: Int, minimum: Int) -> [Int] {
        guard self == .pyramid, layers > 1 else { return Array(repeating: b, count: layers) }
        let top = min(Double(b), max(Double(minimum), Double(b) / Self.pyramidBeta))
        let bottom = 2 * Double(b) - top
        let exact = (0..<layers).map { bottom - (bottom - top) * Double($0) / Double(layers - 1) }
        var out = exact.map { Int($0.rounded(.down)) }
        // the rounding remainder to the layers with the largest fractions (lower layer first)
        let rest = layers * b - out.reduce(0, +)
        let order = (0..<layers).sorted {
            let fa = exact[$0] - Double(out[$0]), fb = exact[$1] - Double(out[$1])
            return fa != fb ? fa > fb : $0 < $1
        }
        for l in order.prefix(rest) { out[l] += 1 }
        return out
    }

    /// The most slots one KV head of a layer with budget `b` holds between steps.
    func headCapacity(_ b: Int) -> Int { self == .adaptive ? 2 * b : b }
}
