import SKCore
import SKRuntime

/// A session's attention and KV-cache settings as a user states them (the `skrun` flags, a
/// server's per-slot configuration): SF-Attn or full attention, the cache policy and its budget,
/// RoPE positions for a compacted cache, prefill chunk, KV storage type.
public struct AttentionSettings: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable { case full, sf }
    public enum Cache: String, Sendable, CaseIterable {
        case full, segment, window, h2o, vatp, tova, snapkv, pyramidkv, adakv
        /// Policies that need `--kv-budget`.
        public var hasBudget: Bool { self != .full && self != .segment }
        /// SnapKV and its budget allocations.
        var allocation: KVBudgetAllocation? {
            switch self {
            case .snapkv: return .uniform
            case .pyramidkv: return .pyramid
            case .adakv: return .adaptive
            default: return nil
            }
        }
    }
    /// A token count, or a percentage of a base (the prompt in generation, the window in perplexity).
    public enum Amount: Sendable, Equatable {
        case tokens(Int)
        case percent(Double)

        /// Parses `N` or `P%`.
        public init(parsing s: String, flag: String) throws {
            if s.hasSuffix("%") {
                guard let p = Double(s.dropLast()), p > 0, p <= 100 else {
                    throw SinkKitError(.invalidArgument, "\(flag) \(s): a percentage must be in (0, 100]")
                }
                self = .percent(p)
                return
            }
            guard let n = Int(s), n > 0 else { throw SinkKitError(.invalidArgument, "\(flag) \(s): expected a positive token count or a percentage") }
            guard n <= Limits.maxTokens else { throw SinkKitError(.invalidArgument, "\(flag) \(s): at most \(Limits.maxTokens) tokens") }
            self = .tokens(n)
        }

        func resolve(base: Int) -> Int {
            switch self {
            case .tokens(let n): return n
            case .percent(let p): return max(1, Int((Double(base) * p / 100).rounded()))
            }
        }
    }

    public var mode: Mode = .full
    /// SF-Attn segment size G (even; nil: a quarter of the trained context, at most the context).
    public var sfGroup: Int?
    /// Sink tokens every token attends to and no policy evicts.
    public var sinks = 4
    /// nil: `full` with full attention, `segment` with SF-Attn.
    public var cache: Cache?
    public var budget: Amount?
    /// H2O's (and VATP's) recent window (nil: half of the budget after the sinks).
    public var recent: Amount?
    /// SnapKV's observation window (nil: 32, less for small budgets).
    public var snapWindow: Int?
    public var positions: PositionMode = .auto
    public var prefillChunk = 256
    public var kvDType: KVDType = .f32

    public init() {}

    /// The policy this resolves to.
    public var effectiveCache: Cache { cache ?? (mode == .sf ? .segment : .full) }
    /// Whether the cache is bounded (streams any length in bounded memory).
    public var isBounded: Bool { mode == .sf || effectiveCache != .full }

    /// Refuses values out of range and settings that would do nothing in the chosen mode.
    public func validate() throws {
        if let g = sfGroup {
            guard (2...Limits.maxTokens).contains(g), g % 2 == 0 else {
                throw SinkKitError(.invalidArgument, "--sf-group must be an even number between 2 and \(Limits.maxTokens) (got \(g))")
            }
            guard mode == .sf else { throw SinkKitError(.invalidArgument, "--sf-group applies to --attention sf") }
        }
        guard (0...Limits.maxChunk).contains(sinks) else { throw SinkKitError(.invalidArgument, "--sinks must be between 0 and \(Limits.maxChunk) (got \(sinks))") }
        guard (1...Limits.maxChunk).contains(prefillChunk) else { throw SinkKitError(.invalidArgument, "--prefill-chunk must be between 1 and \(Limits.maxChunk) (got \(prefillChunk))") }
        if cache == .segment && mode != .sf { throw SinkKitError(.invalidArgument, "--kv segment needs --attention sf") }
        let c = effectiveCache
        if c.hasBudget && budget == nil { throw SinkKitError(.invalidArgument, "--kv \(c.rawValue) needs --kv-budget") }
        if budget != nil && !c.hasBudget {
            throw SinkKitError(.invalidArgument, "--kv-budget applies to --kv window, h2o, vatp, tova, snapkv, pyramidkv or adakv (the \(c.rawValue) cache has no budget to set)")
        }
        if recent != nil && c != .h2o && c != .vatp { throw SinkKitError(.invalidArgument, "--recent applies to --kv h2o or vatp") }
        if let w = snapWindow {
            guard c.allocation != nil else { throw SinkKitError(.invalidArgument, "--snap-window applies to --kv snapkv, pyramidkv or adakv") }
            guard (1...Limits.maxChunk).contains(w) else { throw SinkKitError(.invalidArgument, "--snap-window must be between 1 and \(Limits.maxChunk) (got \(w))") }
        }
    }

    /// The session's attention configuration; `base` is what percentages refer to.
    public func config(model c: ModelConfig, context: Int, base: Int) throws -> AttentionConfig {
        try validate()
        var sf: SFAttention?
        if mode == .sf {
            // default G: a quarter of the trained context, but never more than the context
            let g = sfGroup ?? max(2, min(c.trainedContext / 4, context) / 2 * 2)
            guard g <= context else {
                throw SinkKitError(.invalidArgument, "--sf-group \(g) is larger than the \(context)-token context: SF-Attn needs at least one whole segment")
            }
            sf = SFAttention(groupSize: g, sinks: sinks, heads: c.numHeads)
        }
        var policy: KVCachePolicy = FullCache()
        switch effectiveCache {
        case .full: break
        case .segment: policy = SegmentCache(attention: sf!, heads: c.numHeads, kvHeads: c.numKVHeads)
        case .window, .h2o, .vatp, .tova, .snapkv, .pyramidkv, .adakv:
            let b = budget!.resolve(base: base)
            guard b > sinks else { throw SinkKitError(.invalidArgument, "--kv-budget \(b) must exceed the \(sinks) sinks") }
            if let allocation = effectiveCache.allocation {
                policy = try SnapKVCache(budget: b, sinks: sinks, window: snapWindow, allocation: allocation, layers: c.numLayers)
            } else if effectiveCache == .window {
                policy = WindowCache(budget: b, sinks: sinks)
            } else if effectiveCache == .tova {
                policy = TOVACache(budget: b, sinks: sinks)
            } else {
                let r = recent?.resolve(base: base)
                if let r, r > b - sinks { throw SinkKitError(.invalidArgument, "--recent \(r) leaves no room in a budget of \(b) with \(sinks) sinks") }
                policy = effectiveCache == .vatp ? VATPCache(budget: b, sinks: sinks, recent: r) : H2OCache(budget: b, sinks: sinks, recent: r)
            }
        }
        return AttentionConfig(sf: sf, policy: policy, positions: positions, chunk: prefillChunk, kvDType: kvDType)
    }
}
