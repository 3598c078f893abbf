/// TOVA (arXiv 2401.06104, "Transformers are Multi-State RNNs"): when the cache is over its budget,
/// keep the slots the current query attends to most. Here per KV head (its query heads' weights
/// summed), for the last query of each step (a decoded token, or a prefill chunk's last token);
/// the sinks and that newest token are always kept. Ties: higher weight first, then lower position.
public struct TOVACache: KVCachePolicy {
    public let sinks: Int
    public let slots: Int
    public init(budget: Int, sinks: Int) { slots = budget; self.sinks = sinks }
    public var name: String { "tova" }
    public var budget: Int? { slots }

    public func makeEvictor(layers: Int, kvHeads: Int) -> KVEvictor { TOVAEvictor(rule: self, layers: layers, kvHeads: kvHeads) }

    /// The rule: indices (ascending) of the slots to keep, given each slot's position and the last
    /// query's attention to it.
    public func keep(positions: [Int], weights: [Double]) -> [Int] {
        let n = positions.count
        guard n > slots else { return Array(0..<n) }
        var forced = 1   // the newest
        for i in 0..<(n - 1) where positions[i] < sinks { forced += 1 }
        return keepRanked(count: n, best: slots - forced, scores: weights, positions: positions) { positions[$0] < sinks || $0 == n - 1 }
    }
}

/// TOVA's memory: the newest query's weights over each (layer, KV head)'s slots (one box each,
/// written by one worker), and which query they are.
final class TOVAEvictor: KVEvictor {
    final class Last: SlotScores { var query = -1 }
    let rule: TOVACache
    let last: [[Last]]

    init(rule: TOVACache, layers: Int, kvHeads: Int) {
        self.rule = rule
        last = (0..<layers).map { _ in (0..<kvHeads).map { _ in Last() } }
    }

    var observesAttention: Bool { true }

    func observe(layer: Int, kvHead: Int, slots: UnsafePointer<Int>, weights: UnsafePointer<Float>, count: Int) {
        observe(layer: layer, kvHead: kvHead, query: last[layer][kvHead].query, slots: slots, weights: weights, count: count)
    }

    func observe(layer: Int, kvHead: Int, query: Int, slots: UnsafePointer<Int>, weights: UnsafePointer<Float>, count: Int) {
        let box = last[layer][kvHead]
        if query != box.query {
            box.query = query
            box.values.removeAll(keepingCapacity: true)
        }
        box.add(slots: slots, weights: weights, count: count)
    }

    func keep(_ cache: HeadCache, layer: Int, kvHead: Int, nextPosition: Int) -> [Int] {
        let box = last[layer][kvHead]
        box.pad(to: cache.count)
        let keep = rule.keep(positions: cache.positions, weights: Array(box.values.prefix(cache.count)))
        box.compact(keep)
        return keep
    }

    func reset() {
        for l in last { for h in l { h.query = -1; h.values.removeAll(keepingCapacity: true) } }
    }
}
