/// What a cache policy decides: after each step (a prefill chunk or one decoded token), which
/// slots of one KV head survive. Attention always reads the intersection of what the attention
/// mask allows and what the cache holds. Conformers: `FullCache`, `SegmentCache`, `WindowCache`,
/// `H2OCache`, one per file.
public protocol KVCachePolicy {
    /// Short name for reports (`full`, `segment`, `window`, `h2o`).
    var name: String { get }
    /// Whether attention must accumulate scores for this policy (H2O).
    var needsScores: Bool { get }
    /// Slots per KV head this policy can hold between steps (nil: unbounded, the context).
    var budget: Int? { get }
    /// Indices (ascending) of the slots to keep. `nextPosition` is the position of the next token.
    func keep(_ cache: HeadCache, kvHead: Int, nextPosition: Int) -> [Int]
}

extension KVCachePolicy {
    public var needsScores: Bool { false }
}
