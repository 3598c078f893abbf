import Foundation
import SKCore
import SKFormat

/// Converts a Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) into SKM
/// metadata: the BPE vocabulary and merges as typed arrays, the small trees (normalizer,
/// pre-tokenizer, decoder, post-processor, added tokens) as their JSON, and the special-token
/// rules and chat template from tokenizer_config.json.
public enum TokenizerMetadata {
    public static func entries(directory: String) throws -> [(String, SKMValue)] {
        let path = directory + "/tokenizer.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SinkKitError(.io, "\(path): missing (an SKM file carries its tokenizer; expected tokenizer.json beside config.json)")
        }
        guard let tj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SinkKitError(.malformedHeader, "\(path): not a JSON object")
        }
        guard let model = tj["model"] as? [String: Any] else { throw SinkKitError(.malformedHeader, "\(path): no \"model\" object") }
        let type = model["type"] as? String ?? (model["merges"] != nil ? "BPE" : "")
        guard type == "BPE" else {
            throw SinkKitError(.refused, "\(path): tokenizer model \(type.isEmpty ? "(none)" : type) is not supported (expected BPE: byte-level or SentencePiece-style with byte fallback)")
        }
        guard let vocabDict = model["vocab"] as? [String: Any] else { throw SinkKitError(.malformedHeader, "\(path): model.vocab is not an object") }
        var byId: [Int: String] = [:]
        for (tok, v) in vocabDict {
            guard let id = (v as? NSNumber)?.intValue, id >= 0 else { throw SinkKitError(.malformedHeader, "\(path): vocab entry \(tok) has no valid id") }
            byId[id] = tok
        }
        let added = tj["added_tokens"] as? [[String: Any]] ?? []
        for a in added {
            if let id = (a["id"] as? NSNumber)?.intValue, let content = a["content"] as? String, byId[id] == nil { byId[id] = content }
        }
        let n = (byId.keys.max() ?? -1) + 1
        guard byId.count == n else {
            throw SinkKitError(.malformedHeader, "\(path): token ids are not contiguous (\(byId.count) tokens, largest id \(n - 1))")
        }
        let vocab = (0..<n).map { byId[$0]! }
        var merges: [String] = []
        for m in model["merges"] as? [Any] ?? [] {
            if let s = m as? String { merges.append(s) }
            else if let pair = m as? [String], pair.count == 2 {
                guard !pair[0].contains(" "), !pair[1].contains(" ") else {
                    throw SinkKitError(.refused, "\(path): merge \(pair) has a token containing a space, which SKM's \"left right\" merges cannot hold")
                }
                merges.append(pair[0] + " " + pair[1])
            } else { throw SinkKitError(.malformedHeader, "\(path): a merge is neither \"a b\" nor [a, b]") }
        }
        func json(_ v: Any?) throws -> String {
            guard let v, !(v is NSNull) else { return "null" }
            return String(decoding: try JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
        }
        func str(_ v: Any?) -> String { (v as? String) ?? "" }

        var cfg: [String: Any] = [:]
        if let d = FileManager.default.contents(atPath: directory + "/tokenizer_config.json") {
            guard let c = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else {
                throw SinkKitError(.malformedHeader, "\(directory)/tokenizer_config.json: not a JSON object")
            }
            cfg = c
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
        // transformers >= 4.47 may save the template beside the config as chat_template.jinja.
        var template = ""
        if let d = FileManager.default.contents(atPath: directory + "/chat_template.jinja") { template = String(decoding: d, as: UTF8.self) }
        else if let t = cfg["chat_template"] as? String { template = t }
        else if let list = cfg["chat_template"] as? [[String: Any]] {
            template = (list.first { ($0["name"] as? String) == "default" } ?? list.first)?["template"] as? String ?? ""
        }

        return [
            ("tokenizer.model", .string("BPE")),
            ("tokenizer.vocab", .stringArray(vocab)),
            ("tokenizer.merges", .stringArray(merges)),
            ("tokenizer.byte_fallback", .bool(model["byte_fallback"] as? Bool ?? false)),
            ("tokenizer.ignore_merges", .bool(model["ignore_merges"] as? Bool ?? false)),
            ("tokenizer.fuse_unk", .bool(model["fuse_unk"] as? Bool ?? false)),
            ("tokenizer.unk_token", .string(str(model["unk_token"]))),
            ("tokenizer.continuing_subword_prefix", .string(str(model["continuing_subword_prefix"]))),
            ("tokenizer.end_of_word_suffix", .string(str(model["end_of_word_suffix"]))),
            ("tokenizer.added_tokens", .string(try json(tj["added_tokens"]))),
            ("tokenizer.normalizer", .string(try json(tj["normalizer"]))),
            ("tokenizer.pre_tokenizer", .string(try json(tj["pre_tokenizer"]))),
            ("tokenizer.decoder", .string(try json(tj["decoder"]))),
            ("tokenizer.post_processor", .string(try json(tj["post_processor"]))),
            ("tokenizer.bos_token", .string(special("bos_token"))),
            ("tokenizer.eos_token", .string(special("eos_token"))),
            ("tokenizer.pad_token", .string(special("pad_token"))),
            ("tokenizer.unk_token_text", .string(special("unk_token"))),
            ("tokenizer.add_bos_token", .bool(addBos)),
            ("tokenizer.add_eos_token", .bool(addEos)),
            ("tokenizer.chat_template", .string(template)),
        ]
    }
}
