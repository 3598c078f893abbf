import SKCore

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
        addedTokensJSON = m["tokenizer.added_tokens"]?.string ?? "null"
        normalizerJSON = m["tokenizer.normalizer"]?.string ?? "null"
        preTokenizerJSON = m["tokenizer.pre_tokenizer"]?.string ?? "null"
        decoderJSON = m["tokenizer.decoder"]?.string ?? "null"
        postProcessorJSON = m["tokenizer.post_processor"]?.string ?? "null"
        bosToken = m["tokenizer.bos_token"]?.string ?? ""
        eosToken = m["tokenizer.eos_token"]?.string ?? ""
        chatTemplate = m["tokenizer.chat_template"]?.string ?? ""
    }
}
