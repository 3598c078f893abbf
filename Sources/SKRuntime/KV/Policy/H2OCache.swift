/// H2O (arXiv 2306.14048): sinks, the `heavy` slots with the largest accumulated attention
/// (per KV head: the sum over its query heads), and the `recent` newest slots. Ties: higher score
/// first, then lower position. Sinks are never evicted and count against the budget. The
/// accumulated scores live in the session's `H2OEvictor`, fed by attention's `observe` hook.
public struct H2OCache: KVCachePolicy {
    public let sinks: Int
    public let heavy: Int
    public let recent: Int
    public init(budget: Int, sinks: Int, recent: Int?) {
        self.sinks = sinks
        self.recent = recent ?? (budget - sinks) / 2
        heavy = budget - sinks - self.recent
    }
    public var name: String { "h2o" }
    public var budget: Int? { sinks + heavy + recent }

    public func makeEvictor(layers: Int, kvHeads: Int) -> KVEvictor { H2OEvictor(rule: self, layers: layers, kvHeads: kvHeads) }

    /// The rule: indices (ascending) of the slots to keep, given each slot's position and
    /// accumulated score.
    public func keep(positions: [Int], scores: [Double]) -> [Int] {
        let n = positions.count
        guard n > sinks + heavy + recent else { return Array(0..<n) }
        return keepRanked(count: n, best: heavy, scores: scores, positions: positions) { positions[$0] < sinks || $0 >= n - recent }
    }
}

/// Per-slot attention weights of one (layer, KV head), in the cache's slot order: what H2O
/// accumulates and what TOVA keeps of the newest query. One box per (layer, KV head): workers
/// observing different KV heads never write the same memory.
class SlotScores {
    var values: [Double] = []

    /// Adds `weights` at `slots` (ascending; slots past the end start at zero).
    func add(slots: UnsafePointer<Int>, weights: UnsafePointer<Float>, count: Int) {
        guard count > 0 else { return }
        pad(to: slots[count - 1] + 1)
        values.withUnsafeMutableBufferPointer { s in
            for t in 0..<count { s[slots[t]] += Double(weights[t]) }
        }
    }

    func pad(to n: Int) {
        if values.count < n { values += Array(repeating: 0, count: n - values.count) }
    }

    /// Keeps the values of the kept slots (the cache compacts the same way).
    func compact(_ keep: [Int]) {
        let v = values
        values = keep.map { v[$0] }
    }
}

/// H2O's memory: the attention each slot of each (layer, KV head) has received so far.
final class H2OEvictor: KVEvictor {
    let rule: H2OCache
    /// [layer][kvHead]; the arrays of boxes never change.
    let scores: [[SlotScores]]

    init(rule: H2OCache, layers: Int, kvHeads: Int) {
        self.rule = rule
        scores = (0..<layers).map { _ in (0..<kvHeads).map { _ in SlotScores() } }
    }

    var observesAttention: Bool { true }

    func observe(layer: Int, kvHead: Int, slots: UnsafePointer<Int>, weights: UnsafePointer<Float>, count: Int) {
        scores[layer][kvHead].add(slots: slots, weights: weights, count: count)
    }

    func keep(_ cache: HeadCache, layer: Int, kvHead: Int, nextPosition: Int) -> [Int] {
        let box = scores[layer][kvHead]
        box.pad(to: cache.count)
        let keep = rule.keep(positions: cache.positions, scores: box.values)
        box.compact(keep)
        return keep
    }

    func reset() {
        for l in scores { for h in l { h.values.removeAll(keepingCapacity: true) } }
    }
}
