/// Keys and values of every layer for the positions seen so far, f32, sized to the requested
/// context (not the model's maximum). Layout per layer: [kvHead][slot][headDim].
public final class KVCache {
    public let capacity: Int
    let layers: Int
    let kvHeads: Int
    let headDim: Int
    var keys: [[Float]]
    var values: [[Float]]
    public private(set) var count = 0

    public init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int) {
        self.capacity = capacity
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        keys = (0..<layers).map { _ in [Float](repeating: 0, count: kvHeads * capacity * headDim) }
        values = keys
    }

    public var bytes: Int { 2 * layers * kvHeads * capacity * headDim * 4 }

    func reset() { count = 0 }
    func advance(_ n: Int) { count += n }

    @inline(__always) func offset(head: Int, slot: Int) -> Int { (head * capacity + slot) * headDim }
}
