/// StreamingLLM: the first `sinks` tokens and the `budget − sinks` most recent ones.
public struct WindowCache: StatelessKVCachePolicy {
    public let sinks: Int
    public let slots: Int
    public init(budget: Int, sinks: Int) { slots = budget; self.sinks = sinks }
    public var name: String { "window" }
    public var budget: Int? { slots }

    public func keep(_ cache: HeadCache, kvHead: Int, nextPosition: Int) -> [Int] {
        let n = cache.count
        guard n > slots else { return Array(0..<n) }
        let recent = slots - sinks
        return (0..<n).filter { cache.positions[$0] < sinks || $0 >= n - recent }
    }
}
