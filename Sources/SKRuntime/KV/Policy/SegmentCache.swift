/// With SF-Attn: drops the keys no future query can read. A future query at position p' ≥ P reads,
/// besides the sinks, only keys of its own segment in its head family; keys of older segments
/// (in every family the KV head's query heads use) are gone for good. Bounded by about
/// `1.5·G + S` slots per KV head.
public struct SegmentCache: StatelessKVCachePolicy {
    public let attention: SFAttention
    /// Head families (false: unshifted, true: shifted) used by each KV head's query heads.
    let families: [[Bool]]

    public init(attention: SFAttention, heads: Int, kvHeads: Int) {
        self.attention = attention
        let group = heads / kvHeads
        families = (0..<kvHeads).map { kh in
            Array(Set(((kh * group)..<((kh + 1) * group)).map { attention.isShifted(head: $0) })).sorted { !$0 && $1 }
        }
    }
    public var name: String { "segment" }
    public var sinks: Int { attention.sinks }
    public var budget: Int? { attention.groupSize + attention.groupSize / 2 + attention.sinks }

    public func keep(_ cache: HeadCache, kvHead: Int, nextPosition: Int) -> [Int] {
        (0..<cache.count).filter { i in
            let q = cache.positions[i]
            if q < attention.sinks { return true }
            return families[kvHead].contains { attention.segment(q, shifted: $0) == attention.segment(nextPosition, shifted: $0) }
        }
    }
}
