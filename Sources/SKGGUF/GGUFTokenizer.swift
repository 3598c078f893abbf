#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SKCore
import SKTokenizer

/// The tokenizer a GGUF file carries (`tokenizer.ggml.*`), as the Hugging Face tokenizer it was
/// converted from: llama.cpp's convert_hf_to_gguf.py writes the vocabulary, the merges, each
/// token's type and the pre-tokenizer's name (`tokenizer.ggml.pre`, which llama.cpp maps to a
/// fixed set of split regexes); this inverts that into a `TokenizerSpec` whose trees are the ones
/// the original tokenizer.json had for that pre-tokenizer, so SinkKit's tokenizer encodes as
/// `tokenizers` (and llama.cpp) do.
///
/// Byte-level BPE (`tokenizer.ggml.model` "gpt2") is read for the pre-tokenizers below;
/// SentencePiece-style vocabularies ("llama", scored pieces without merges) are refused by name.
public enum GGUFTokenizer {
    /// Token types as llama.cpp writes them (`llama_token_type`).
    enum TokenType: Int { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    static let llama3Split = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Split = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    // llama.cpp's split expressions for these pre-tokenizers (llama-vocab.cpp), applied in order,
    // each isolating its matches, as the models' tokenizer.json Split sequences do.
    static let deepseekLLMSplits: [String] = [
        "[\r\n]",
        "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
        "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
        "\\s+$",
        "[一-龥ࠀ-一가-퟿]+",
        "\\p{N}+",
    ]
    static let deepseekCoderSplits: [String] = [
        "[\r\n]",
        "\\s?\\p{L}+",
        "\\s?\\p{P}+",
        "[一-龥ࠀ-一가-퟿]+",
        "\\p{N}",
    ]
    static let falconSplits: [String] = [
        "[\\p{P}\\$\\+<=>\\^~\\|`]+",
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
        "[0-9][0-9][0-9]",
    ]

    /// The pre-tokenizer tree of each supported `tokenizer.ggml.pre` value (the tokenizer.json
    /// of the models llama.cpp names that way).
    static func preTokenizer(_ pre: String) -> [String: Any]? {
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        func split(_ pattern: String) -> [String: Any] {
            ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false] as [String: Any],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false] as [String: Any],
            ]]
        }
        func splits(_ patterns: [String]) -> [String: Any] {
            ["type": "Sequence", "pretokenizers": patterns.map {
                ["type": "Split", "pattern": ["Regex": $0], "behavior": "Isolated", "invert": false] as [String: Any]
            } + [["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false] as [String: Any]]]
        }
        switch pre {
        case "gpt-2", "gpt2", "mpt": return byteLevel
        case "deepseek-llm": return splits(deepseekLLMSplits)
        case "deepseek-coder": return splits(deepseekCoderSplits)
        case "falcon": return splits(falconSplits)
        case "smollm", "starcoder", "refact", "command-r": return ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true] as [String: Any], byteLevel]]
        case "llama-bpe", "llama3", "llama-v3": return split(llama3Split)
        case "qwen2": return split(qwen2Split)
        default: return nil
        }
    }
    static let supportedPre = "gpt-2, mpt, smollm, starcoder, refact, command-r, llama-bpe, qwen2, deepseek-llm, deepseek-coder, falcon"

    /// The `tokenizer.ggml.pre` name of a pre-tokenizer tree (JSON text), when it is one of the
    /// trees above (compared as parsed JSON, so key order and spacing do not matter).
    public static func preName(preTokenizerJSON text: String) -> String? {
        guard let parsed = try? StrictJSON.parse(Data(text.utf8), path: "pre_tokenizer"),
              let mine = try? JSONWriter.string(parsed) else { return nil }
        for name in ["smollm", "gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "falcon"] {
            if let tree = preTokenizer(name), let theirs = try? JSONWriter.string(tree), theirs == mine { return name }
        }
        return nil
    }

    /// What both tokenizer models share: the vocabulary, each token's type, the special tokens.
    struct Vocabulary {
        var tokens: [String] = []
        var types: [Int] = []
        var bos, eos, pad, unk: Int?
        var addBos = false, addEos = false
    }

    static func vocabulary(_ g: GGUFFile, defaultAddBos: Bool) throws -> Vocabulary {
        let path = g.path
        func meta(_ k: String) -> GGUFFile.Value? { g.metadata["tokenizer.ggml." + k] }
        guard let tokenValues = meta("tokens")?.array, !tokenValues.isEmpty else {
            throw SinkKitError(.config, "\(path): tokenizer.ggml.tokens is missing or not an array")
        }
        var v = Vocabulary()
        v.tokens.reserveCapacity(tokenValues.count)
        for (i, t) in tokenValues.enumerated() {
            guard let s = t.string else { throw SinkKitError(.config, "\(path): tokenizer.ggml.tokens[\(i)] is not a string") }
            v.tokens.append(s)
        }
        v.types = [Int](repeating: TokenType.normal.rawValue, count: v.tokens.count)
        if let tv = meta("token_type") {
            guard let a = tv.array, a.count == v.tokens.count else {
                throw SinkKitError(.config, "\(path): tokenizer.ggml.token_type must be an array of \(v.tokens.count) integers")
            }
            for (i, x) in a.enumerated() {
                guard let t = x.int, (1...6).contains(t) else { throw SinkKitError(.config, "\(path): tokenizer.ggml.token_type[\(i)] is not a token type (1 to 6)") }
                v.types[i] = t
            }
        }
        func tokenId(_ k: String) throws -> Int? {
            guard let x = meta(k) else { return nil }
            guard let id = x.int, id >= 0, id < v.tokens.count else {
                throw SinkKitError(.config, "\(path): tokenizer.ggml.\(k) is not a token id below \(v.tokens.count)")
            }
            return id
        }
        v.bos = try tokenId("bos_token_id"); v.eos = try tokenId("eos_token_id")
        v.pad = try tokenId("padding_token_id"); v.unk = try tokenId("unknown_token_id")
        v.addBos = meta("add_bos_token")?.bool ?? defaultAddBos
        v.addEos = meta("add_eos_token")?.bool ?? false
        return v
    }

    /// Added tokens (tokenizer.json's `added_tokens`), special tokens, the post-processor (a
    /// TemplateProcessing with BOS/EOS when they are added, else `otherwise`) and the chat template.
    static func finish(_ spec: inout TokenizerSpec, _ v: Vocabulary, _ g: GGUFFile, specialTypes: Set<Int>, otherwise: String) throws {
        var added: [[String: Any]] = []
        for (i, t) in v.types.enumerated() where specialTypes.contains(t) || t == TokenType.userDefined.rawValue {
            let special = t != TokenType.userDefined.rawValue
            added.append(["id": i, "content": v.tokens[i], "single_word": false, "lstrip": false, "rstrip": false,
                          "normalized": !special, "special": special])
        }
        spec.addedTokensJSON = try JSONWriter.string(added)
        // Encoding follows the post-processor: a leading BOS (and a trailing EOS) as a template.
        if (v.addBos && v.bos != nil) || (v.addEos && v.eos != nil) {
            var single: [[String: Any]] = [], special: [String: Any] = [:]
            func piece(_ id: Int) -> [String: Any] {
                special[v.tokens[id]] = ["id": v.tokens[id], "ids": [id], "tokens": [v.tokens[id]]] as [String: Any]
                return ["SpecialToken": ["id": v.tokens[id], "type_id": 0] as [String: Any]]
            }
            if v.addBos, let b = v.bos { single.append(piece(b)) }
            single.append(["Sequence": ["id": "A", "type_id": 0] as [String: Any]])
            if v.addEos, let e = v.eos { single.append(piece(e)) }
            spec.postProcessorJSON = try JSONWriter.string(["type": "TemplateProcessing", "single": single, "pair": single, "special_tokens": special] as [String: Any])
        } else {
            spec.postProcessorJSON = otherwise
        }
        spec.bosToken = v.bos.map { v.tokens[$0] } ?? ""
        spec.eosToken = v.eos.map { v.tokens[$0] } ?? ""
        spec.padToken = v.pad.map { v.tokens[$0] } ?? ""
        spec.unkTokenText = v.unk.map { v.tokens[$0] } ?? ""
        spec.addBosToken = v.addBos
        spec.addEosToken = v.addEos
        spec.chatTemplate = g.metadata["tokenizer.chat_template"]?.string ?? ""
    }

    public static func spec(_ g: GGUFFile) throws -> TokenizerSpec {
        let path = g.path
        func meta(_ k: String) -> GGUFFile.Value? { g.metadata["tokenizer.ggml." + k] }
        guard let model = meta("model")?.string else {
            throw SinkKitError(.config, "\(path): no tokenizer (tokenizer.ggml.model is missing); an SKM file carries its tokenizer")
        }
        guard model == "gpt2" || model == "llama" else {
            throw SinkKitError(.refused, "\(path): tokenizer.ggml.model \"\(model)\" is not supported; SinkKit reads byte-level BPE (\"gpt2\") and SentencePiece BPE (\"llama\") GGUF tokenizers")
        }
        if model == "llama" { return try sentencePiece(g) }
        let pre = meta("pre")?.string ?? "default"
        guard let preTree = preTokenizer(pre) else {
            throw SinkKitError(.refused, "\(path): tokenizer.ggml.pre \"\(pre)\" is not supported (expected one of \(supportedPre)); convert from the Hugging Face directory instead")
        }
        let v = try vocabulary(g, defaultAddBos: false)
        var merges: [String] = []
        if let mv = meta("merges") {
            guard let a = mv.array else { throw SinkKitError(.config, "\(path): tokenizer.ggml.merges is not an array") }
            merges.reserveCapacity(a.count)
            for (i, x) in a.enumerated() {
                guard let s = x.string else { throw SinkKitError(.config, "\(path): tokenizer.ggml.merges[\(i)] is not a string") }
                merges.append(s)
            }
        }
        if let sp = meta("add_space_prefix")?.bool, sp {
            throw SinkKitError(.refused, "\(path): tokenizer.ggml.add_space_prefix is true, which byte-level BPE tokenizers do not use; this file is not supported")
        }
        var spec = TokenizerSpec(vocab: v.tokens, merges: merges)
        // llama.cpp (and Llama 3's tokenizer.json) take a pre-token that is itself in the
        // vocabulary whole, without merging.
        spec.ignoreMerges = ["llama-bpe", "llama3", "llama-v3"].contains(pre)
        spec.preTokenizerJSON = try JSONWriter.string(preTree)
        spec.decoderJSON = try JSONWriter.string(["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true] as [String: Any])
        // Control and user-defined tokens are the tokenizer.json's added tokens (special and not).
        try finish(&spec, v, g, specialTypes: [TokenType.control.rawValue],
                   otherwise: try JSONWriter.string(["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true] as [String: Any]))
        return spec
    }

    /// A SentencePiece BPE vocabulary (`tokenizer.ggml.model` "llama": Llama 2, Mistral, Phi-3):
    /// scored pieces, no merges. As transformers' converter does (SentencePieceExtractor), every
    /// split of a piece into two pieces of the vocabulary is a merge, ranked by the merged piece's
    /// score (highest first; ties in vocabulary order), so BPE merges the pair llama.cpp's
    /// tokenizer merges; `▁` stands for a space, one is prepended when `add_space_prefix` says so
    /// (llama.cpp's default: yes), and bytes without a piece fall back to `<0xXX>` tokens.
    static func sentencePiece(_ g: GGUFFile) throws -> TokenizerSpec {
        let path = g.path
        func meta(_ k: String) -> GGUFFile.Value? { g.metadata["tokenizer.ggml." + k] }
        let v = try vocabulary(g, defaultAddBos: true)
        guard let sv = meta("scores")?.array, sv.count == v.tokens.count else {
            throw SinkKitError(.config, "\(path): tokenizer.ggml.scores must be an array of \(v.tokens.count) numbers for a SentencePiece vocabulary")
        }
        var scores: [Double] = []
        for (i, x) in sv.enumerated() {
            guard let d = x.double, d.isFinite else { throw SinkKitError(.config, "\(path): tokenizer.ggml.scores[\(i)] is not a finite number") }
            scores.append(d)
        }
        var ids: [String: Int] = [:]
        for (i, t) in v.tokens.enumerated() where ids[t] == nil { ids[t] = i }
        // Merges: (left, right, score of the merged piece), in vocabulary order and, within a
        // piece, by the ids of its halves; then a stable sort by score, highest first.
        var merges: [(l: Int, r: Int, score: Double)] = []
        for (id, piece) in v.tokens.enumerated() where v.types[id] == TokenType.normal.rawValue || v.types[id] == TokenType.userDefined.rawValue {
            let chars = Array(piece)
            guard chars.count >= 2, !piece.contains(" ") else { continue }
            var local: [(Int, Int)] = []
            for k in 1..<chars.count {
                if let l = ids[String(chars[..<k])], let r = ids[String(chars[k...])] { local.append((l, r)) }
            }
            local.sort { ($0.0, $0.1) < ($1.0, $1.1) }
            for (l, r) in local { merges.append((l, r, scores[id])) }
        }
        let order = merges.indices.sorted { a, b in
            merges[a].score != merges[b].score ? merges[a].score > merges[b].score : a < b
        }
        var spec = TokenizerSpec(vocab: v.tokens, merges: order.map { v.tokens[merges[$0].l] + " " + v.tokens[merges[$0].r] })
        spec.byteFallback = true
        spec.fuseUnk = true
        spec.unkToken = v.unk.map { v.tokens[$0] } ?? ""
        let addPrefix = meta("add_space_prefix")?.bool ?? true
        let replace: [String: Any] = ["type": "Replace", "pattern": ["String": " "] as [String: Any], "content": "\u{2581}"]
        spec.normalizerJSON = try JSONWriter.string(addPrefix
            ? ["type": "Sequence", "normalizers": [["type": "Prepend", "prepend": "\u{2581}"] as [String: Any], replace]] as [String: Any]
            : replace)
        var decoders: [[String: Any]] = [
            ["type": "Replace", "pattern": ["String": "\u{2581}"] as [String: Any], "content": " "], ["type": "ByteFallback"], ["type": "Fuse"],
        ]
        if addPrefix { decoders.append(["type": "Strip", "content": " ", "start": 1, "stop": 0]) }
        spec.decoderJSON = try JSONWriter.string(["type": "Sequence", "decoders": decoders] as [String: Any])
        try finish(&spec, v, g, specialTypes: [TokenType.control.rawValue, TokenType.unknown.rawValue], otherwise: "null")
        return spec
    }
}
