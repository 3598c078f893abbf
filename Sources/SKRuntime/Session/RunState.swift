/// The scratch memory of a session's forward pass, allocated when the session is made (and grown,
/// never per step, when a longer chunk arrives): activations of the chunk being run, attention's
/// per-worker buffers, the f32 rows of an f16 cache and the rotated keys of the "cache" position
/// mode. Shapes in the comments: n = rows of the chunk, cap = cache capacity.
final class RunState {
    let hidden, qDim, kvDim, inter, headDim, kvHeads, capacity, workers: Int
    private(set) var rows = 0
    // Activations, (n, dim) row-major.
    private(set) var x, xb, tmp: UnsafeMutablePointer<Float>       // (n, hidden) residual, normed, sublayer out
    private(set) var q, att: UnsafeMutablePointer<Float>           // (n, qDim)
    private(set) var k, v: UnsafeMutablePointer<Float>             // (n, kvDim)
    private(set) var g, u: UnsafeMutablePointer<Float>             // (n, intermediate)
    /// f32 rows of each KV head (an f16 cache decoded, for sgemm or rotation): (kvHeads, 2, cap, headDim).
    let kvRows: UnsafeMutablePointer<Float>
    /// Keys moved to their slot positions ("cache" positions): (kvHeads, cap, headDim).
    let rotatedKeys: UnsafeMutablePointer<Float>
    /// Per worker, decode attention: scores and weights (cap each), slot indices (cap), query (headDim).
    let decodeScores, decodeWeights, decodeQuery: [UnsafeMutablePointer<Float>]
    let decodeSlots: [UnsafeMutablePointer<Int>]
    /// Per worker, blocked prefill attention: (64, cap) scores + (64, headDim) queries.
    private(set) var blockScratch: [UnsafeMutablePointer<Float>] = []
    private(set) var blockFloats = 0
    /// The f32 key/value rows handed to attention, one entry per KV head.
    let kvPointers: UnsafeMutablePointer<(keys: UnsafePointer<Float>, values: UnsafePointer<Float>)>

    init(config c: ModelConfig, capacity: Int, workers: Int) {
        hidden = c.hiddenSize; qDim = c.qDim; kvDim = c.kvDim; inter = c.intermediateSize
        headDim = c.headDim; kvHeads = c.numKVHeads; self.capacity = capacity; self.workers = max(1, workers)
        x = .allocate(capacity: 1); xb = .allocate(capacity: 1); tmp = .allocate(capacity: 1)
        q = .allocate(capacity: 1); att = .allocate(capacity: 1); k = .allocate(capacity: 1); v = .allocate(capacity: 1)
        g = .allocate(capacity: 1); u = .allocate(capacity: 1)
        kvRows = .allocate(capacity: max(1, kvHeads * 2 * capacity * headDim))
        rotatedKeys = .allocate(capacity: max(1, kvHeads * capacity * headDim))
        let w = max(1, workers), slots = max(1, capacity), hd = c.headDim
        // one row of `capacity` per query head of a GQA group (Attention.attendDecode)
        let group = max(1, c.numHeads / max(1, c.numKVHeads))
        decodeScores = (0..<w).map { _ in .allocate(capacity: slots * group) }
        decodeWeights = (0..<w).map { _ in .allocate(capacity: slots * group) }
        decodeQuery = (0..<w).map { _ in .allocate(capacity: hd) }
        decodeSlots = (0..<w).map { _ in .allocate(capacity: slots) }
        kvPointers = .allocate(capacity: kvHeads)
        kvPointers.initialize(repeating: (UnsafePointer(kvRows), UnsafePointer(kvRows)), count: kvHeads)
    }

    deinit {
        for p in [x, xb, tmp, q, att, k, v, g, u, kvRows, rotatedKeys] { p.deallocate() }
        for p in decodeScores + decodeWeights + decodeQuery + blockScratch { p.deallocate() }
        for p in decodeSlots { p.deallocate() }
        kvPointers.deallocate()
    }

    /// Activation buffers for chunks of up to `n` rows.
    func reserve(rows n: Int) {
        guard n > rows else { return }
        for p in [x, xb, tmp, q, att, k, v, g, u] { p.deallocate() }
        x = .allocate(capacity: n * hidden); xb = .allocate(capacity: n * hidden); tmp = .allocate(capacity: n * hidden)
        q = .allocate(capacity: n * qDim); att = .allocate(capacity: n * qDim)
        k = .allocate(capacity: n * kvDim); v = .allocate(capacity: n * kvDim)
        g = .allocate(capacity: n * inter); u = .allocate(capacity: n * inter)
        rows = n
    }

    /// Per-worker blocked-attention buffers of at least `floats` each.
    func reserveBlock(floats: Int) {
        guard floats > blockFloats else { return }
        for p in blockScratch { p.deallocate() }
        blockScratch = (0..<workers).map { _ in .allocate(capacity: floats) }
        blockFloats = floats
    }

    /// Where KV head `kh`'s f32 rows are decoded: (2, cap, headDim).
    func kvRows(head kh: Int) -> UnsafeMutablePointer<Float> { kvRows + kh * 2 * capacity * headDim }
}
