/// The KV cache of a session: one `HeadCache` per layer and KV head, each holding at most
/// `capacity` slots (the context for a full cache; the policy's budget plus one prefill chunk
/// for a bounded one, whatever the length of the stream).
public final class KVCache {
    public let capacity: Int
    let layers: Int
    let kvHeads: Int
    let headDim: Int
    public let dtype: KVDType
    var heads: [[HeadCache]]
    /// Tokens seen so far (the absolute position of the next token).
    public internal(set) var position = 0

    /// - Parameter pinned: the sinks: a kivi4 cache holds the first `pinned` keys of a stream
    ///   as f16, never in a group (the other types store every key alike).
    public init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int, dtype: KVDType = .f32, pinned: Int = 0) {
        self.capacity = capacity
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.dtype = dtype
        heads = (0..<layers).map { _ in (0..<kvHeads).map { _ in HeadCache(capacity: capacity, headDim: headDim, dtype: dtype, pinned: pinned) } }
    }

    /// Bytes allocated for keys and values (and, for kivi4, beside them).
    public var bytes: Int { layers * kvHeads * capacity * dtype.slotBytes(headDim: headDim) + sideBytes }
    /// Bytes holding live entries now (with what is held beside the slots).
    public var usedBytes: Int { heads.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } } * dtype.slotBytes(headDim: headDim) + sideBytes }
    /// Bytes held beside the slots (kivi4: group scales and unsealed keys), all heads.
    public var sideBytes: Int { heads.reduce(0) { $0 + $1.reduce(0) { $0 + $1.storage.sideBytes } } }
    /// The most slots any KV head holds now.
    public var maxSlots: Int { heads.map { $0.map(\.count).max() ?? 0 }.max() ?? 0 }

    public func head(layer: Int, kvHead: Int) -> HeadCache { heads[layer][kvHead] }

    func reset() {
        position = 0
        for l in heads { for h in l { h.reset() } }
    }
}
