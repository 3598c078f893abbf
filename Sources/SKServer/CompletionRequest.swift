#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKCore
import SKEngine

/// A `/v1/chat/completions` or `/v1/completions` request, validated field by field (OpenAI's
/// names and ranges; unknown fields are ignored, as OpenAI does; fields SinkKit cannot honour are
/// refused by name rather than silently ignored).
struct CompletionRequest: Sendable {
    enum Kind: Sendable { case chat, completion }
    var kind: Kind
    var input: GenerationInput
    var parameters: GenerationParameters
    var stream = false
    var includeUsage = false

    init(body: Data, kind: Kind, defaultMaxTokens: Int) throws {
        let obj: Any
        do { obj = try StrictJSON.parse(body, path: "request body") } catch let e as SinkKitError {
            throw APIError.invalid("malformed JSON: \(e.message)")
        }
        guard let d = obj as? [String: Any] else { throw APIError.invalid("the request body must be a JSON object") }
        self.kind = kind

        func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let v = d[key], !(v is JSONNull) else { return nil }
            guard let n = v as? JSONNumber, let i = n.intValue, range.contains(i) else {
                throw APIError.invalid("\(key) must be an integer between \(range.lowerBound) and \(range.upperBound)", param: key)
            }
            return i
        }
        func number(_ key: String, _ ok: (Double) -> Bool, _ what: String) throws -> Double? {
            guard let v = d[key], !(v is JSONNull) else { return nil }
            guard let n = v as? JSONNumber, n.doubleValue.isFinite, ok(n.doubleValue) else {
                throw APIError.invalid("\(key) must be \(what)", param: key)
            }
            return n.doubleValue
        }
        func bool(_ key: String) throws -> Bool? {
            guard let v = d[key], !(v is JSONNull) else { return nil }
            guard let b = v as? Bool else { throw APIError.invalid("\(key) must be true or false", param: key) }
            return b
        }

        switch kind {
        case .chat:
            guard let raw = d["messages"] else { throw APIError.invalid("messages is required", param: "messages") }
            guard let list = raw as? [Any], !list.isEmpty else { throw APIError.invalid("messages must be a non-empty array", param: "messages") }
            var messages: [ChatMessage] = []
            for (i, m) in list.enumerated() {
                guard let m = m as? [String: Any], let role = m["role"] as? String else {
                    throw APIError.invalid("messages[\(i)] must be an object with a role", param: "messages")
                }
                guard ["system", "developer", "user", "assistant"].contains(role) else {
                    throw APIError.invalid("messages[\(i)].role \"\(role)\" is not supported (system, user, assistant)", param: "messages")
                }
                var content = ""
                switch m["content"] {
                case let s as String: content = s
                case let parts as [Any]:
                    for p in parts {
                        guard let p = p as? [String: Any], p["type"] as? String == "text", let t = p["text"] as? String else {
                            throw APIError.invalid("messages[\(i)].content: only text parts are supported", param: "messages")
                        }
                        content += t
                    }
                case is JSONNull, nil: content = ""
                default: throw APIError.invalid("messages[\(i)].content must be a string or an array of text parts", param: "messages")
                }
                messages.append(ChatMessage(role: role == "developer" ? "system" : role, content: content))
            }
            input = .chat(messages)
        case .completion:
            switch d["prompt"] {
            case let s as String: input = .text(s, addSpecialTokens: true)
            case let l as [Any] where l.count == 1 && l[0] is String: input = .text(l[0] as? String ?? "", addSpecialTokens: true)
            case let l as [Any] where !l.isEmpty && l.allSatisfy({ ($0 as? JSONNumber)?.intValue != nil }):
                input = .tokens(l.compactMap { ($0 as? JSONNumber)?.intValue })
            case nil: throw APIError.invalid("prompt is required", param: "prompt")
            default: throw APIError.invalid("prompt must be a string, a one-element array of strings, or an array of token ids", param: "prompt")
            }
            if let e = try bool("echo"), e { throw APIError.invalid("echo is not supported", param: "echo") }
            if d["suffix"] != nil && !(d["suffix"] is JSONNull) { throw APIError.invalid("suffix is not supported", param: "suffix") }
        }
        if let n = try int("n", 1...Int.max), n != 1 { throw APIError.invalid("n must be 1 (one choice per request)", param: "n") }
        for key in ["tools", "functions", "response_format", "logit_bias"] where d[key] != nil && !(d[key] is JSONNull) {
            throw APIError.invalid("\(key) is not supported", param: key)
        }
        if let l = try bool("logprobs"), l { throw APIError.invalid("logprobs is not supported", param: "logprobs") }
        for key in ["presence_penalty", "frequency_penalty"] {
            if let v = try number(key, { $0 >= -2 && $0 <= 2 }, "between -2 and 2"), v != 0 {
                throw APIError.invalid("\(key) is not supported (use repeat_penalty)", param: key)
            }
        }

        var p = GenerationParameters()
        p.maxTokens = try int("max_completion_tokens", 0...Limits.maxTokens) ?? int("max_tokens", 0...Limits.maxTokens) ?? defaultMaxTokens
        if let t = try number("temperature", { $0 >= 0 && $0 <= 2 }, "between 0 and 2") { p.temperature = Float(t) }
        if let t = try number("top_p", { $0 > 0 && $0 <= 1 }, "in (0, 1]") { p.topP = Float(t) }
        if let t = try number("min_p", { $0 >= 0 && $0 <= 1 }, "in [0, 1]") { p.minP = Float(t) }
        if let t = try int("top_k", 0...Limits.maxVocab) { p.topK = t }
        if let t = try number("repeat_penalty", { $0 > 0 && $0 <= 10 }, "in (0, 10]") { p.repeatPenalty = Float(t) }
        if let s = try int("seed", Int(Int64.min)...Int(Int64.max)) { p.seed = UInt64(bitPattern: Int64(s)) }
        switch d["stop"] {
        case nil, is JSONNull: break
        case let s as String where !s.isEmpty: p.stop = [s]
        case let l as [Any] where l.count <= 4 && l.allSatisfy({ ($0 as? String).map { !$0.isEmpty } ?? false }): p.stop = l.compactMap { $0 as? String }
        default: throw APIError.invalid("stop must be a non-empty string or an array of up to 4 non-empty strings", param: "stop")
        }
        p.cachePrompt = try bool("cache_prompt") ?? true   // llama-server's name
        // llama-server's per-request adapters: [{"id": 0, "scale": s}]; an adapter the list does
        // not name runs at scale 0 (so [] is the base model). SinkKit serves one adapter, id 0.
        if let l = d["lora"], !(l is JSONNull) {
            guard let list = l as? [Any], list.count <= 1 else {
                throw APIError.invalid("lora must be an array of at most one {\"id\": 0, \"scale\": number} (this server loads one adapter)", param: "lora")
            }
            p.loraScale = 0
            if let e = list.first {
                guard let o = e as? [String: Any], let id = (o["id"] as? JSONNumber)?.intValue, let sc = o["scale"] as? JSONNumber else {
                    throw APIError.invalid("lora entries must be objects with an integer id and a number scale", param: "lora")
                }
                guard id == 0 else { throw APIError.invalid("lora: adapter id \(id) is not loaded (this server has adapter 0 only)", param: "lora") }
                guard sc.doubleValue.isFinite, abs(sc.doubleValue) <= 100 else {
                    throw APIError.invalid("lora: scale must be a finite number of magnitude at most 100", param: "lora")
                }
                p.loraScale = Float(sc.doubleValue)
            }
        }
        stream = try bool("stream") ?? false
        if let o = d["stream_options"], !(o is JSONNull) {
            guard let o = o as? [String: Any] else { throw APIError.invalid("stream_options must be an object", param: "stream_options") }
            includeUsage = (o["include_usage"] as? Bool) ?? false
        }
        parameters = p
    }
}

