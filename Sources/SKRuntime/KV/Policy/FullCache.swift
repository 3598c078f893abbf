/// Keeps everything: the cache grows to the context.
public struct FullCache: StatelessKVCachePolicy {
    public init() {}
    public var name: String { "full" }
    public var budget: Int? { nil }
    public func keep(_ cache: HeadCache, kvHead: Int, nextPosition: Int) -> [Int] { Array(0..<cache.count) }
}
