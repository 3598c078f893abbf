/// Upper bounds on every number that reaches SinkKit from outside (command-line flags, config
/// files, SKM metadata): each is far above what any real model or run needs, and low enough that
/// the arithmetic built on it cannot overflow and nothing is allocated for a value nobody checked.
/// A value beyond a bound is an error naming the field and the bound, never a trap.
public enum Limits {
    // Command line.
    /// Worker threads.
    public static let maxThreads = 1024
    /// Context (KV cache positions), prompt and generation lengths, budgets, chunk sizes (tokens).
    public static let maxTokens = 1 << 24
    /// Sink tokens, SF-Attn segment size, prefill chunk (tokens).
    public static let maxChunk = 1 << 20

    // Model hyperparameters (config.json and SKM metadata).
    public static let maxLayers = 1024
    public static let maxHiddenSize = 1 << 17
    public static let maxIntermediateSize = 1 << 20
    public static let maxHeads = 1 << 12
    public static let maxHeadDim = 1 << 12
    public static let maxVocab = 1 << 24
    public static let maxPositions = 1 << 26
    /// RoPE scaling factors (linear, dynamic, llama3, yarn): real ones are 2 to 64.
    public static let maxRopeFactor = 1e6

    // Files.
    /// config.json, adapter_config.json, tokenizer_config.json, a shard index.
    public static let maxJSONFileBytes = 64 << 20
    /// tokenizer.json (Gemma's is 34 MB).
    public static let maxTokenizerFileBytes = 1 << 30
    /// A chat template.
    public static let maxTemplateBytes = 4 << 20
    /// The largest ratio of a zstd-compressed SKM tensor's raw size to its stored size (real
    /// weights compress by a few percent; an all-zero tensor of 1 MB compresses about 8,000×).
    public static let maxCompressionRatio = 1 << 14
}

extension Limits {
    /// `value` if it lies in `range`, else an `invalidArgument` error naming `what`.
    public static func check<T: BinaryInteger>(_ value: T, _ range: ClosedRange<T>, _ what: @autoclosure () -> String) throws -> T {
        guard range.contains(value) else {
            throw SinkKitError(.invalidArgument, "\(what()) must be between \(range.lowerBound) and \(range.upperBound) (got \(value))")
        }
        return value
    }
}
