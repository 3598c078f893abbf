/// SinkLoRA's SF-Attn at inference (docs/ALGORITHMS.md §2, causal, no wrap-around):
/// segments of `groupSize` tokens; query heads `h ≥ H/2` use segments offset by `groupSize/2`;
/// every token also attends to the first `sinks` tokens.
public struct SFAttention: Equatable {
    public let groupSize: Int
    public let sinks: Int
    public let heads: Int

    public init(groupSize: Int, sinks: Int, heads: Int) {
        self.groupSize = groupSize
        self.sinks = sinks
        self.heads = heads
    }

    @inline(__always) public func isShifted(head: Int) -> Bool { head >= heads / 2 }

    @inline(__always) public func segment(_ p: Int, shifted: Bool) -> Int {
        shifted ? (p + groupSize / 2) / groupSize : p / groupSize
    }

    /// May the query at position `p` (head `h`) read the key at position `q`?
    @inline(__always) public func allowed(head h: Int, query p: Int, key q: Int) -> Bool {
        guard q <= p else { return false }
        if q < sinks { return true }
        let s = isShifted(head: h)
        return segment(q, shifted: s) == segment(p, shifted: s)
    }
}

/// Which RoPE positions attention uses for a compacted cache.
public enum PositionMode: String, CaseIterable, Sendable {
    case auto, absolute, cache
}

/// Attention and cache settings of a session.
public struct AttentionConfig {
    public var sf: SFAttention?
    public var policy: KVCachePolicy
    public var positions: PositionMode
    /// Prefill chunk size: a long prompt never holds more than the budget plus one chunk.
    public var chunk: Int
    /// Storage of the cached keys and values.
    public var kvDType: KVDType

    public init(sf: SFAttention? = nil, policy: KVCachePolicy = FullCache(), positions: PositionMode = .auto, chunk: Int = 256,
                kvDType: KVDType = .f32) {
        self.sf = sf
        self.policy = policy
        self.positions = positions
        self.chunk = chunk
        self.kvDType = kvDType
    }

    public static let full = AttentionConfig()
}
