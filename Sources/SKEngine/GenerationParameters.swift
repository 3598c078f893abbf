/// What to generate and how to sample it, per request.
public struct GenerationParameters: Sendable, Equatable {
    /// At most this many tokens (nil: until EOS, a stop string or a full context).
    public var maxTokens: Int?
    /// 0 is greedy (argmax).
    public var temperature: Float = 0.8
    public var topK = 40
    public var topP: Float = 0.95
    public var minP: Float = 0.05
    public var repeatPenalty: Float = 1.0
    public var seed: UInt64 = 42
    /// Generation stops before the first occurrence of any of these strings (not included in the text).
    public var stop: [String] = []
    /// Keep generating past the end-of-sequence token.
    public var ignoreEOS = false
    /// Reuse the prompt's prefix already in the session's cache (prefill only the new tokens).
    /// Off: the prompt is computed from scratch, so the output is exactly a fresh session's (a
    /// reused prefix was computed in other chunks, which can move the last bits of the logits).
    public var cachePrompt = true
    /// The scale of the engine's run-time LoRA adapter for this generation (llama-server's
    /// per-request `lora`): nil keeps the adapter as loaded, 0 runs the base model.
    public var loraScale: Float?

    public init(maxTokens: Int? = nil, temperature: Float = 0.8, topK: Int = 40, topP: Float = 0.95, minP: Float = 0.05,
                repeatPenalty: Float = 1.0, seed: UInt64 = 42, stop: [String] = [], ignoreEOS: Bool = false) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repeatPenalty = repeatPenalty
        self.seed = seed
        self.stop = stop
        self.ignoreEOS = ignoreEOS
    }
}

/// What a generation is fed.
public enum GenerationInput: Sendable {
    /// Text, tokenized with the tokenizer's template (BOS) when `addSpecialTokens`.
    case text(String, addSpecialTokens: Bool = true)
    /// Messages rendered with the chat template, ready for the assistant's reply.
    case chat([ChatMessage])
    /// Token ids as they are.
    case tokens([Int])
}

/// Why a generation ended.
public enum StopReason: String, Sendable, Codable {
    /// The model produced an end-of-sequence token.
    case eos
    /// `maxTokens` reached.
    case length
    /// One of the stop strings appeared.
    case stop
    /// A full cache has no room for another token.
    case contextFull = "context_full"
    /// The consumer stopped listening (a closed stream, a disconnected client, Ctrl-C).
    case cancelled
}

/// One generated token and the text it completes (possibly empty: bytes of a character still
/// incomplete, or held back because they may start a stop string).
public struct GeneratedPiece: Sendable, Equatable {
    public var token: Int
    public var text: String
}

/// The outcome of a generation.
public struct GenerationResult: Sendable, Equatable {
    public var text: String
    public var tokens: [Int]
    public var promptTokens: Int
    /// Prompt tokens that were already in the cache (prompt reuse) and not computed again.
    public var reusedTokens: Int
    public var stopReason: StopReason
    public var promptSeconds: Double
    public var generationSeconds: Double
    public var generatedTokens: Int { tokens.count }
}

/// What a streaming generation delivers.
public enum GenerationEvent: Sendable {
    case piece(GeneratedPiece)
    case finished(GenerationResult)
}
