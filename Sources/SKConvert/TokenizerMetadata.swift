import Foundation
import SKCore
import SKFormat
import SKTokenizer

/// Converts a Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) into SKM
/// metadata: the BPE vocabulary and merges as typed arrays, the small trees (normalizer,
/// pre-tokenizer, decoder, post-processor, added tokens) as their JSON, and the special-token
/// rules and chat template from tokenizer_config.json.
public enum TokenizerMetadata {
    public static func entries(directory: String) throws -> [(String, SKMValue)] {
        let path = directory + "/tokenizer.json"
        guard InputFile.exists(path) else {
            throw SinkKitError(.io, "\(path): missing (an SKM file carries its tokenizer; expected tokenizer.json beside config.json)")
        }
        let data = try InputFile.read(path, limit: Limits.maxTokenizerFileBytes)
        var cfg: [String: Any] = [:]
        if InputFile.exists(directory + "/tokenizer_config.json") {
            cfg = try StrictJSON.object(file: directory + "/tokenizer_config.json")
        }
        // transformers >= 4.47 may save the template beside the config as chat_template.jinja.
        var templateFile: String?
        if InputFile.exists(directory + "/chat_template.jinja") {
            templateFile = String(decoding: try InputFile.read(directory + "/chat_template.jinja", limit: Limits.maxTemplateBytes), as: UTF8.self)
        }
        return try entries(tokenizerJSON: data, path: path, tokenizerConfig: cfg, chatTemplateFile: templateFile)
    }

    /// The entries from the files' contents: tokenizer.json (read from `path`), tokenizer_config.json
    /// (empty when absent) and chat_template.jinja (nil when absent).
    public static func entries(tokenizerJSON data: Data, path: String, tokenizerConfig cfg: [String: Any],
                               chatTemplateFile: String?) throws -> [(String, SKMValue)] {
        let doc = try TokenizerJSON(data: data, path: path)
        let type = doc.modelType ?? (doc.merges != nil ? "BPE" : "")
        guard type == "BPE" else {
            throw SinkKitError(.refused, "\(path): tokenizer model \(type.isEmpty ? "(none)" : type) is not supported (expected BPE: byte-level or SentencePiece-style with byte fallback)")
        }
        guard let vocabPairs = doc.vocab else { throw SinkKitError(.malformedHeader, "\(path): model.vocab is not an object") }
        var byId: [Int: String] = [:]
        for (tok, id) in vocabPairs {
            guard id >= 0 else { throw SinkKitError(.malformedHeader, "\(path): vocab entry \(tok) has no valid id") }
            byId[id] = tok
        }
        let tj = try doc.smallTrees()
        let added = tj["added_tokens"] as? [[String: Any]] ?? []
        for a in added {
            if let id = (a["id"] as? JSONNumber)?.intValue, let content = a["content"] as? String, byId[id] == nil { byId[id] = content }
        }
        let n = (byId.keys.max() ?? -1) + 1
        guard byId.count == n else {
            throw SinkKitError(.malformedHeader, "\(path): token ids are not contiguous (\(byId.count) tokens, largest id \(n - 1))")
        }
        let vocab = (0..<n).map { byId[$0]! }
        let merges = doc.merges ?? []
        func json(_ v: Any?) throws -> String {
            guard let v, !(v is JSONNull) else { return "null" }
            return try JSONWriter.string(v)
        }

        func special(_ key: String) -> String {
            if let s = cfg[key] as? String { return s }
            if let d = cfg[key] as? [String: Any], let s = d["content"] as? String { return s }
            return ""
        }
        // add_bos_token: tokenizer_config.json when it says; else whether the post-processor's
        // single-sequence template starts with a special token (Llama-2/3 style).
        var addBos = false
        if let b = cfg["add_bos_token"] as? Bool { addBos = b }
        else if let pp = tj["post_processor"] as? [String: Any], let single = pp["single"] as? [[String: Any]], let first = single.first, first["SpecialToken"] != nil {
            addBos = true
        }
        let addEos = cfg["add_eos_token"] as? Bool ?? false
        var template = ""
        if let t = chatTemplateFile { template = t }
        else if let t = cfg["chat_template"] as? String { template = t }
        else if let list = cfg["chat_template"] as? [[String: Any]] {
            template = (list.first { ($0["name"] as? String) == "default" } ?? list.first)?["template"] as? String ?? ""
        }

        var spec = TokenizerSpec(vocab: vocab, merges: merges)
        spec.byteFallback = doc.flags["byte_fallback"] ?? false
        spec.ignoreMerges = doc.flags["ignore_merges"] ?? false
        spec.fuseUnk = doc.flags["fuse_unk"] ?? false
        spec.unkToken = doc.strings["unk_token"] ?? ""
        spec.continuingSubwordPrefix = doc.strings["continuing_subword_prefix"] ?? ""
        spec.endOfWordSuffix = doc.strings["end_of_word_suffix"] ?? ""
        spec.addedTokensJSON = try json(tj["added_tokens"])
        spec.normalizerJSON = try json(tj["normalizer"])
        spec.preTokenizerJSON = try json(tj["pre_tokenizer"])
        spec.decoderJSON = try json(tj["decoder"])
        spec.postProcessorJSON = try json(tj["post_processor"])
        spec.bosToken = special("bos_token")
        spec.eosToken = special("eos_token")
        spec.padToken = special("pad_token")
        spec.unkTokenText = special("unk_token")
        spec.addBosToken = addBos
        spec.addEosToken = addEos
        spec.chatTemplate = template
        return spec.metadataEntries()
    }
}

/// What the converter reads from tokenizer.json, through `JSONScanner`: the model's type, its
/// vocabulary and merges (the bulk of the file) and flags taken directly; the small top-level trees
/// (added tokens, normalizer, pre-tokenizer, decoder, post-processor) kept as byte ranges and
/// parsed on request, so their stored JSON text is what it always was.
/// Values of an unexpected type read as absent, as the `as?` casts of a parsed tree do.
struct TokenizerJSON {
    var modelType: String?
    var vocab: [(String, Int)]?
    var merges: [String]?
    var flags: [String: Bool] = [:]
    var strings: [String: String] = [:]
    private var trees: [String: Data] = [:]
    private let path: String

    static let treeKeys: Set<String> = ["added_tokens", "normalizer", "pre_tokenizer", "decoder", "post_processor"]

    init(data: Data, path: String) throws { self = try Self.read(data, path: path) }

    private init(path: String) { self.path = path }

    private static func read(_ data: Data, path: String) throws -> TokenizerJSON {
        var doc = TokenizerJSON(path: path)
        var seenModel = false
        try data.withUnsafeBytes { raw in
            var s = JSONScanner(raw.bindMemory(to: UInt8.self), path: path)
            guard try s.kind() == .object else { throw SinkKitError(.malformedHeader, "\(path): not a JSON object") }
            var top: Set<String> = []
            try s.object { s, key in
                guard top.insert(key).inserted else { throw s.error("the key \"\(key)\" appears twice") }
                if key == "model" {
                    guard try s.kind() == .object else { try s.skip(); return }
                    seenModel = true
                    try doc.readModel(&s)
                } else if treeKeys.contains(key) {
                    let r = try s.skip()
                    doc.trees[key] = Data(s.bytes(r))
                } else {
                    try s.skip()
                }
            }
            try s.end()
        }
        guard seenModel else { throw SinkKitError(.malformedHeader, "\(path): no \"model\" object") }
        return doc
    }

    private mutating func readModel(_ s: inout JSONScanner) throws {
        var keys: Set<String> = []
        try s.object { s, key in
            guard keys.insert(key).inserted else { throw s.error("the key \"model.\(key)\" appears twice") }
            let kind = try s.kind()
            switch key {
            case "type":
                if kind == .string { modelType = try s.string() } else { try s.skip() }
            case "vocab":
                guard kind == .object else { try s.skip(); return }
                var pairs: [(String, Int)] = []
                pairs.reserveCapacity(1 << 16)
                // A token listed twice, or two tokens with one id, leaves an id unused: the
                // contiguity check names that. (No Set<String> here: Swift compares strings by
                // canonical equivalence, and a vocabulary may hold both forms of "é".)
                try s.object { s, tok in
                    guard try s.kind() == .number else { throw SinkKitError(.malformedHeader, "\(path): vocab entry \(tok) has no valid id") }
                    pairs.append((tok, try s.int()))
                }
                vocab = pairs
            case "merges":
                guard kind == .array else { try s.skip(); merges = []; return }
                var list: [String] = []
                list.reserveCapacity(1 << 16)
                try s.array { s in
                    switch try s.kind() {
                    case .string: list.append(try s.string())
                    case .array:
                        var pair: [String] = []
                        try s.array { s in
                            guard try s.kind() == .string else { throw SinkKitError(.malformedHeader, "\(path): a merge is neither \"a b\" nor [a, b]") }
                            pair.append(try s.string())
                        }
                        guard pair.count == 2 else { throw SinkKitError(.malformedHeader, "\(path): a merge is neither \"a b\" nor [a, b]") }
                        guard !pair[0].utf8.contains(0x20), !pair[1].utf8.contains(0x20) else {
                            throw SinkKitError(.refused, "\(path): merge \(pair) has a token containing a space, which SKM's \"left right\" merges cannot hold")
                        }
                        list.append(pair[0] + " " + pair[1])
                    default: throw SinkKitError(.malformedHeader, "\(path): a merge is neither \"a b\" nor [a, b]")
                    }
                }
                merges = list
            case "byte_fallback", "ignore_merges", "fuse_unk":
                if kind == .bool { flags[key] = try s.bool() } else { try s.skip() }
            case "unk_token", "continuing_subword_prefix", "end_of_word_suffix":
                if kind == .string { strings[key] = try s.string() } else { try s.skip() }
            default:
                try s.skip()
            }
        }
    }

    /// The small top-level trees, parsed (absent keys are absent).
    func smallTrees() throws -> [String: Any] {
        var out: [String: Any] = [:]
        for (k, d) in trees {
            out[k] = try StrictJSON.parse(d, path: "tokenizer.json \(k)")
        }
        return out
    }
}
