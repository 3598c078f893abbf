/// A KV cache policy: the rule that decides, after each step (a prefill chunk or one decoded
/// token), which slots of one KV head survive. The rule is a value the user picks
/// (`FullCache`, `SegmentCache`, `WindowCache`, `H2OCache`: one per file); what it needs to remember
/// between steps lives in its `KVEvictor`, one per session. Attention reports its weights to the
/// evictor through `observe` when the evictor asks for them, and never knows which rule runs.
/// Attention always reads the intersection of what the attention mask allows and what the cache
/// holds.
public protocol KVCachePolicy {
    /// Short name for reports (`full`, `segment`, `window`, `h2o`).
    var name: String { get }
    /// Slots per KV head this policy can hold between steps (nil: unbounded, the context); for
    /// a policy that splits its budget unevenly over layers or heads, the mean.
    var budget: Int? { get }
    /// The most slots any one KV head can hold between steps (the cache's size before the prefill
    /// chunk); the budget unless the policy splits it unevenly.
    var headCapacity: Int? { get }
    /// Positions 0..<sinks: attended to by every query and never evicted (0: none).
    var sinks: Int { get }
    /// The per-session side of the rule.
    func makeEvictor(layers: Int, kvHeads: Int) -> KVEvictor
}

/// The per-session state of a cache policy.
public protocol KVEvictor: AnyObject {
    /// Whether attention must report its weights (`observe`): H2O's accumulated attention.
    var observesAttention: Bool { get }
    /// How many of a step's last queries it observes (nil: all); the others may be computed
    /// without reporting (blocked prefill).
    var observedQueries: Int? { get }
    /// One query's softmax weights over the `count` slots of (layer, kvHead) it read, in slot
    /// order; called before the step's eviction, by one worker per KV head, in a fixed order.
    func observe(layer: Int, kvHead: Int, slots: UnsafePointer<Int>, weights: UnsafePointer<Float>, count: Int)
    /// The same, with the query's position (TOVA keeps only the newest query's weights).
    func observe(layer: Int, kvHead: Int, query: Int, slots: UnsafePointer<Int>, weights: UnsafePointer<Float>, count: Int)
    /// Indices (ascending) of the slots to keep after a step; the evictor compacts its own state
    /// to match. `nextPosition` is the position of the next token.
    func keep(_ cache: HeadCache, layer: Int, kvHead: Int, nextPosition: Int) -> [Int]
    /// The same for every KV head of a layer at once (a rule that splits a layer's budget over its
    /// heads); by default `keep` head by head.
    func keepLayer(_ caches: [HeadCache], layer: Int, nextPosition: Int) -> [[Int]]
    /// A step of `count` queries at positions `start..<start+count` begins (before any layer).
    func beginStep(start: Int, count: Int)
    /// Forgets everything (a new stream).
    func reset()
}

extension KVCachePolicy {
    public var sinks: Int { 0 }
    public var headCapacity: Int? { budget }
}

extension KVEvictor {
    public func keepLayer(_ caches: [HeadCache], layer: Int, nextPosition: Int) -> [[Int]] {
        caches.enumerated().map { keep($1, layer: layer, kvHead: $0, nextPosition: nextPosition) }
    }
    public func beginStep(start: Int, count: Int) {}
    public var observedQueries: Int? { nil }
    public func observe(layer: Int, kvHead: Int, query: Int, slots: UnsafePointer<Int>, weights: UnsafePointer<Float>, count: Int) {
        observe(layer: layer, kvHead: kvHead, slots: slots, weights: weights, count: count)
    }
}

/// A rule that remembers nothing between steps: its keep set depends on the slots' positions only.
public protocol StatelessKVCachePolicy: KVCachePolicy {
    func keep(_ cache: HeadCache, kvHead: Int, nextPosition: Int) -> [Int]
}

extension StatelessKVCachePolicy {
    public func makeEvictor(layers: Int, kvHeads: Int) -> KVEvictor { StatelessEvictor(rule: self) }
}

final class StatelessEvictor<Rule: StatelessKVCachePolicy>: KVEvictor {
    let rule: Rule
    init(rule: Rule) { self.rule = rule }
    var observesAttention: Bool { false }
    func observe(layer: Int, kvHead: Int, slots: UnsafePointer<Int>, weights: UnsafePointer<Float>, count: Int) {}
    func keep(_ cache: HeadCache, layer: Int, kvHead: Int, nextPosition: Int) -> [Int] { rule.keep(cache, kvHead: kvHead, nextPosition: nextPosition) }
    func reset() {}
}
