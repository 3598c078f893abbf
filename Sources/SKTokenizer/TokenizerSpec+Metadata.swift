import SKCore

/// The `tokenizer.*` metadata of an SKM file (Formats/SKM.md, "Metadata keys"): the one
/// definition of those keys, written by the converter (`metadataEntries`) and read by the runtime
/// (`init(metadata:path:)`).
extension TokenizerSpec {
    /// The tokenizer stored in an SKM file's `tokenizer.*` metadata.
    public init(metadata m: [String: SKMValue], path: String) throws {
        guard m["tokenizer.model"]?.string == "BPE", let vocab = m["tokenizer.vocab"]?.stringArray,
              let merges = m["tokenizer.merges"]?.stringArray else {
            throw SinkKitError(.config, "\(path): no BPE tokenizer in the file's metadata (tokenizer.model, tokenizer.vocab, tokenizer.merges)")
        }
        self.init(vocab: vocab, merges: merges)
        byteFallback = m["tokenizer.byte_fallback"]?.bool ?? false
        ignoreMerges = m["tokenizer.ignore_merges"]?.bool ?? false
        fuseUnk = m["tokenizer.fuse_unk"]?.bool ?? false
        unkToken = m["tokenizer.unk_token"]?.string ?? ""
        continuingSubwordPrefix = m["tokenizer.continuing_subword_prefix"]?.string ?? ""
        endOfWordSuffix = m["tokenizer.end_of_word_suffix"]?.string ?? ""
        addedTokensJSON = m["tokenizer.added_tokens"]?.string ?? "null"
        normalizerJSON = m["tokenizer.normalizer"]?.string ?? "null"
        preTokenizerJSON = m["tokenizer.pre_tokenizer"]?.string ?? "null"
        decoderJSON = m["tokenizer.decoder"]?.string ?? "null"
        postProcessorJSON = m["tokenizer.post_processor"]?.string ?? "null"
        bosToken = m["tokenizer.bos_token"]?.string ?? ""
        eosToken = m["tokenizer.eos_token"]?.string ?? ""
        padToken = m["tokenizer.pad_token"]?.string ?? ""
        unkTokenText = m["tokenizer.unk_token_text"]?.string ?? ""
        addBosToken = m["tokenizer.add_bos_token"]?.bool ?? false
        addEosToken = m["tokenizer.add_eos_token"]?.bool ?? false
        chatTemplate = m["tokenizer.chat_template"]?.string ?? ""
    }

    /// The entries that store this tokenizer.
    public func metadataEntries() -> [(String, SKMValue)] {
        [
            ("tokenizer.model", .string("BPE")),
            ("tokenizer.vocab", .stringArray(vocab)),
            ("tokenizer.merges", .stringArray(merges)),
            ("tokenizer.byte_fallback", .bool(byteFallback)),
            ("tokenizer.ignore_merges", .bool(ignoreMerges)),
            ("tokenizer.fuse_unk", .bool(fuseUnk)),
            ("tokenizer.unk_token", .string(unkToken)),
            ("tokenizer.continuing_subword_prefix", .string(continuingSubwordPrefix)),
            ("tokenizer.end_of_word_suffix", .string(endOfWordSuffix)),
            ("tokenizer.added_tokens", .string(addedTokensJSON)),
            ("tokenizer.normalizer", .string(normalizerJSON)),
            ("tokenizer.pre_tokenizer", .string(preTokenizerJSON)),
            ("tokenizer.decoder", .string(decoderJSON)),
            ("tokenizer.post_processor", .string(postProcessorJSON)),
            ("tokenizer.bos_token", .string(bosToken)),
            ("tokenizer.eos_token", .string(eosToken)),
            ("tokenizer.pad_token", .string(padToken)),
            ("tokenizer.unk_token_text", .string(unkTokenText)),
            ("tokenizer.add_bos_token", .bool(addBosToken)),
            ("tokenizer.add_eos_token", .bool(addEosToken)),
            ("tokenizer.chat_template", .string(chatTemplate)),
        ]
    }
}
