/// H2O (arXiv 2306.14048): sinks, the `heavy` slots with the largest accumulated attention
/// (per KV head: the sum over its query heads), and the `recent` newest slots. Ties: higher score
/// first, then lower position. Sinks are never evicted and count against the budget.
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
    public var needsScores: Bool { true }
    public var budget: Int? { sinks + heavy + recent }

    public func keep(_ cache: HeadCache, kvHead: Int, nextPosition: Int) -> [Int] {
        let n = cache.count
        guard n > sinks + heavy + recent else { return Array(0..<n) }
        var keep = Set<Int>()
        for i in 0..<n where cache.positions[i] < sinks { keep.insert(i) }
        for i in max(0, n - recent)..<n { keep.insert(i) }
        let candidates = (0..<n).filter { !keep.contains($0) }.sorted {
            cache.scores[$0] != cache.scores[$1] ? cache.scores[$0] > cache.scores[$1] : cache.positions[$0] < cache.positions[$1]
        }
        for i in candidates.prefix(heavy) { keep.insert(i) }
        return keep.sorted()
    }
}
