import SKCore

/// SnapKV (arXiv 2404.14469, "SnapKV: LLM Knows What You are Looking for Before Generation"):
/// compress the cache by the attention of the last `window` queries (the observation window: at
/// the end of a prompt, the question), each slot's score max-pooled with its neighbours (kernel
/// 7) so kept tokens come with their context. Kept: the sinks, the newest `window` slots and the
/// best-scored rest.
///
/// Streaming (SinkKit): a layer is compressed whenever its KV heads hold more than its budget B
/// each (on average), down to `B − window` slots, so the cache never holds more than B between steps and
/// decoding compresses once every `window + 1` tokens; the scores are those of the queries seen
/// since the layer's last compression (each step's last `window` queries: a prefill chunk's end,
/// or every decoded token), per KV head (the sum over its query heads). Ties: higher pooled score,
/// then lower position.
///
/// How the budget is split (`allocation`, BudgetAllocation.swift): the same B for every layer and
/// head (SnapKV), a pyramid over the layers (PyramidKV), or within a layer by the heads' scores
/// (Ada-KV).
public struct SnapKVCache: KVCachePolicy {
    public let sinks: Int
    /// Mean slots per layer and KV head.
    public let slots: Int
    public let window: Int
    public let allocation: KVBudgetAllocation
    public let layers: Int
    /// SnapKV's pooling kernel (odd).
    public static let poolKernel = 7

    /// The default observation window: 32 (SnapKV's), smaller for small budgets (a quarter of
    /// what the sinks leave).
    public static func defaultWindow(budget: Int, sinks: Int) -> Int { max(1, min(32, (budget - sinks) / 4)) }

    /// - Parameters:
    ///   - layers: the model's layer count (PyramidKV's budgets depend on it).
    public init(budget: Int, sinks: Int, window: Int? = nil, allocation: KVBudgetAllocation = .uniform, layers: Int) throws {
        let w = window ?? Self.defaultWindow(budget: budget, sinks: sinks)
        // a layer compressed to B − W keeps its sinks, the W newest and at least one more
        guard w >= 1, budget >= sinks + 2 * w + 1 else {
            throw SinkKitError(.invalidArgument, "--kv \(allocation.policyName) needs a budget of at least sinks + 2·window + 1 = \(sinks + 2 * w + 1) (got \(budget))")
        }
        slots = budget
        self.sinks = sinks
        self.window = w
        self.allocation = allocation
        self.layers = max(1, layers)
    }

    public var name: String { allocation.policyName }
    public var budget: Int? { slots }
    public var headCapacity: Int? { allocation.headCapacity(layerBudgets.max()!) }

    /// Each layer's budget per KV head (mean: `slots`).
    public var layerBudgets: [Int] { allocation.layerBudgets(mean: slots, layers: layers, minimum: sinks + 2 * window + 1) }

    public func makeEvictor(layers: Int, kvHeads: Int) -> KVEvictor { SnapKVEvictor(rule: self, layers: layers, kvHeads: kvHeads) }

    /// Scores max-pooled over `kernel` neighbouring slots (clipped at the ends).
    public static func pooled(_ scores: [Double], kernel: Int = poolKernel) -> [Double] {
        let r = kernel / 2, n = scores.count
        return (0..<n).map { i in scores[max(0, i - r)...min(n - 1, i + r)].max()! }
    }

    /// One KV head's slots that are always kept: the sinks and the newest `window`.
    func fixed(positions: [Int]) -> [Int] {
        let n = positions.count
        return (0..<n).filter { positions[$0] < sinks || $0 >= n - window }
    }

    /// The candidates of one KV head (slots not always kept), best first: pooled score over the
    /// slots before the window, then position.
    func ranked(positions: [Int], scores: [Double]) -> [(slot: Int, score: Double)] {
        let n = positions.count
        let pooled = Self.pooled(Array(scores[0..<max(0, n - window)]))
        return (0..<max(0, n - window)).filter { positions[$0] >= sinks }
            .map { (slot: $0, score: pooled[$0]) }
            .sorted { $0.score != $1.score ? $0.score > $1.score : positions[$0.slot] < positions[$1.slot] }
    }

    /// The rule for one layer: given each KV head's slot positions and scores, and the layer's
    /// budget B per head, whether to compress (the heads hold more than B each on average) and, if
    /// so, each head's kept slots (ascending), `B − window` per head on average.
    public func keep(positions: [[Int]], scores: [[Double]], layerBudget b: Int) -> [[Int]]? {
        guard positions.reduce(0, { $0 + $1.count }) > positions.count * b else { return nil }
        let target = b - window
        let fixedSets = positions.map { fixed(positions: $0) }
        let ranks = positions.indices.map { ranked(positions: positions[$0], scores: scores[$0]) }
        var chosen = fixedSets.map { Set($0) }
        switch allocation {
        case .uniform, .pyramid:
            for h in positions.indices { chosen[h].formUnion(ranks[h].prefix(max(0, target - fixedSets[h].count)).map(\.slot)) }
        case .adaptive:
            // Ada-KV: the layer's heads share one budget; each head first takes its floor, then
            // the best candidates of all heads together, a head at most 2·target slots.
            let free = positions.indices.map { max(0, target - fixedSets[$0].count) }
            var left = free.reduce(0, +)
            var taken = [Int](repeating: 0, count: positions.count)
            for h in positions.indices {
                let f = min(ranks[h].count, Int(KVBudgetAllocation.adaptiveFloor * Double(free[h])))
                chosen[h].formUnion(ranks[h].prefix(f).map(\.slot))
                taken[h] = f
                left -= f
            }
            let all = positions.indices.flatMap { h in ranks[h].indices.dropFirst(taken[h]).map { (h: h, r: $0) } }
                .sorted {
                    let a = ranks[$0.h][$0.r], c = ranks[$1.h][$1.r]
                    if a.score != c.score { return a.score > c.score }
                    let pa = positions[$0.h][a.slot], pc = positions[$1.h][c.slot]
                    return pa != pc ? pa < pc : $0.h < $1.h
                }
            for item in all where left > 0 {
                guard chosen[item.h].count < 2 * target else { continue }
                chosen[item.h].insert(ranks[item.h][item.r].slot)
                left -= 1
            }
        }
        return chosen.map { $0.sorted() }
    }
}

/// SnapKV's memory: per (layer, KV head), the attention each slot received from the observation
/// windows since the layer's last compression.
final class SnapKVEvictor: KVEvictor {
    let rule: SnapKVCache
    let budgets: [Int]
    let scores: [[SlotScores]]
    /// Queries before this position are not in the current step's observation window.
    var windowStart = 0

    init(rule: SnapKVCache, layers: Int, kvHeads: Int) {
        self.rule = rule
        budgets = rule.layerBudgets
        scores = (0..<layers).map { _ in (0..<kvHeads).map { _ in SlotScores() } }
    }

    var observesAttention: Bool { true }
    var observedQueries: Int? { rule.window }

    func beginStep(start: Int, count: Int) { windowStart = start + count - rule.window }

    func observe(layer: Int, kvHead: Int, slots: UnsafePointer<Int>, weights: UnsafePointer<Float>, count: Int) {
        scores[layer][kvHead].add(slots: slots, weights: weights, count: count)
    }

    func observe(layer: Int, kvHead: Int, query: Int, slots: UnsafePointer<Int>, weights: UnsafePointer<Float>, count: Int) {
        guard query >= windowStart else { return }
        scores[layer][kvHead].add(slots: slots, weights: weights, count: count)
    }

    func keep(_ cache: HeadCache, layer: Int, kvHead: Int, nextPosition: Int) -> [Int] {
        keep([cache], boxes: [scores[layer][kvHead]], layer: layer)[0]
    }

    func keepLayer(_ caches: [HeadCache], layer: Int, nextPosition: Int) -> [[Int]] {
        keep(caches, boxes: scores[layer], layer: layer)
    }

    func keep(_ caches: [HeadCache], boxes: [SlotScores], layer: Int) -> [[Int]] {
        for (box, c) in zip(boxes, caches) { box.pad(to: c.count) }
        guard let keep = rule.keep(positions: caches.map(\.positions), scores: zip(boxes, caches).map { Array($0.values.prefix($1.count)) },
                                   layerBudget: budgets[min(layer, budgets.count - 1)]) else {
            return caches.map { Array(0..<$0.count) }
        }
        // a new observation period starts with every kept slot at zero
        for (box, k) in zip(boxes, keep) { box.values = [Double](repeating: 0, count: k.count) }
        return keep
    }

    func reset() {
        windowStart = 0
        for l in scores { for h in l { h.values.removeAll(keepingCapacity: true) } }
    }
}
