/// VATP (arXiv 2406.12335, "Attention Score is not All You Need for Token Importance Indicator in
/// KV Cache Reduction: Value Also Matters") on ZipCache's normalized attention (arXiv 2405.14256):
/// H2O's layout (sinks, `heavy`, `recent`), the heavy slots ranked by
/// `acc / (nextPosition − position) · ‖v‖₁`: the attention a slot has received divided by the number
/// of queries that have seen it (ZipCache: H2O's plain sum favours the oldest slots, seen by the
/// most queries), times the ℓ1 norm of its value as stored (VATP: a slot with a small value moves
/// the output little however much it is attended to). Ties: higher score first, then lower
/// position. Sinks are never evicted and count against the budget.
public struct VATPCache: KVCachePolicy {
    /// The split of the budget (sinks, heavy, recent) and the ranking: H2O's, fed other scores.
    public let layout: H2OCache
    public init(budget: Int, sinks: Int, recent: Int?) { layout = H2OCache(budget: budget, sinks: sinks, recent: recent) }
    public var name: String { "vatp" }
    public var sinks: Int { layout.sinks }
    public var budget: Int? { layout.budget }

    public func makeEvictor(layers: Int, kvHeads: Int) -> KVEvictor { VATPEvictor(rule: self, layers: layers, kvHeads: kvHeads) }

    /// The rule: indices (ascending) of the slots to keep, given each slot's position, accumulated
    /// attention and value ℓ1 norm, and the position of the next token.
    public func keep(positions: [Int], scores: [Double], valueNorms: [Double], nextPosition: Int) -> [Int] {
        let n = positions.count
        guard n > budget! else { return Array(0..<n) }
        return layout.keep(positions: positions, scores: (0..<n).map {
            scores[$0] / Double(max(1, nextPosition - positions[$0])) * valueNorms[$0]
        })
    }
}

/// VATP's memory: per (layer, KV head), the attention each slot has received (kept by an H2O
/// evictor, whose own rule never runs) and the ℓ1 norm of its value, read back from the storage
/// once when the slot first takes part in an eviction (so a quantized cache ranks by the value it
/// will actually use).
final class VATPEvictor: KVEvictor {
    let rule: VATPCache
    let attention: H2OEvictor
    let norms: [[SlotScores]]

    init(rule: VATPCache, layers: Int, kvHeads: Int) {
        self.rule = rule
        attention = H2OEvictor(rule: rule.layout, layers: layers, kvHeads: kvHeads)
        norms = (0..<layers).map { _ in (0..<kvHeads).map { _ in SlotScores() } }
    }

    var observesAttention: Bool { true }

    func observe(layer: Int, kvHead: Int, slots: UnsafePointer<Int>, weights: UnsafePointer<Float>, count: Int) {
        attention.observe(layer: layer, kvHead: kvHead, slots: slots, weights: weights, count: count)
    }

    func keep(_ cache: HeadCache, layer: Int, kvHead: Int, nextPosition: Int) -> [Int] {
        let box = attention.scores[layer][kvHead], norm = norms[layer][kvHead]
        box.pad(to: cache.count)
        // slots are only appended between evictions: the new ones are those past the known norms
        if norm.values.count < cache.count {
            var key = [Float](repeating: 0, count: cache.headDim), value = key
            for slot in norm.values.count..<cache.count {
                cache.storage.read(slot: slot, key: &key, value: &value)
                norm.values.append(value.reduce(0) { $0 + Double(abs($1)) })
            }
        }
        let keep = rule.keep(positions: cache.positions, scores: box.values, valueNorms: norm.values, nextPosition: nextPosition)
        box.compact(keep)
        norm.compact(keep)
        return keep
    }

    func reset() {
        attention.reset()
        for l in norms { for h in l { h.values.removeAll(keepingCapacity: true) } }
    }
}
