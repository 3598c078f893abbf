/// Everything a tokenizer is made of, as SKM stores it (Formats/SKM.md "Metadata keys"): the
/// vocabulary and merges as arrays, the Hugging Face sub-objects (normalizer, pre-tokenizer,
/// decoder, post-processor, added tokens) as their JSON text, and tokenizer_config.json's rules.
public struct TokenizerSpec {
    public var vocab: [String]
    public var merges: [String]
    public var byteFallback = false
    public var ignoreMerges = false
    /// Consecutive symbols outside the vocabulary (no byte fallback) become one unknown token.
    public var fuseUnk = false
    public var unkToken = ""
    public var addedTokensJSON = "null"
    public var normalizerJSON = "null"
    public var preTokenizerJSON = "null"
    public var decoderJSON = "null"
    public var postProcessorJSON = "null"
    public var bosToken = ""
    public var eosToken = ""
    public var chatTemplate = ""
    // Informational (recorded, not used by encoding, which follows the post-processor).
    public var padToken = ""
    public var unkTokenText = ""
    public var addBosToken = false
    public var addEosToken = false
    public var continuingSubwordPrefix = ""
    public var endOfWordSuffix = ""

    public init(vocab: [String], merges: [String]) {
        self.vocab = vocab
        self.merges = merges
    }
}
