#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKCore

/// A BPE tokenizer with Hugging Face tokenizers' semantics, built from a `TokenizerSpec`:
/// byte-level BPE with a regex pre-tokenizer (SmolLM2, Llama-3, Qwen2) or SentencePiece-style
/// BPE with `▁` and byte fallback (Llama-2). Added/special tokens are matched before
/// normalization and BPE; BOS/EOS come from the post-processor's template.
public final class Tokenizer {
    public let vocab: [String]
    let ids: [String: Int]
    let ranks: [String: Int]
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let byteFallback: Bool
    let ignoreMerges: Bool
    let unkId: Int?
    let fuseUnk: Bool
    /// Added tokens, longest first (leftmost-longest matching).
    let added: [(content: String, id: Int, special: Bool, lstrip: Bool, rstrip: Bool)]
    public let specialIds: Set<Int>
    let templateSingle: [Either]
    let addedBytes: [[UInt8]]
    /// Decoded bytes of every token id, one flat buffer (token i is
    /// `tokenBytesFlat[tokenBytesStart[i]..<tokenBytesStart[i + 1]]`: one allocation, not one per
    /// token), and how many leading spaces the decoder strips from the start of the text.
    let tokenBytesFlat: [UInt8]
    let tokenBytesStart: [Int32]
    var tokenCount: Int { tokenBytesStart.count - 1 }
    func tokenBytes(_ id: Int) -> ArraySlice<UInt8> { tokenBytesFlat[Int(tokenBytesStart[id])..<Int(tokenBytesStart[id + 1])] }
    let stripLeading: Int
    public let bosId: Int?
    public let eosId: Int?
    public let chatTemplate: String
    public let bosToken: String
    public let eosToken: String
    var cache: [String: [Int]] = [:]
    let cacheLock = Lock()

    enum Either { case special([Int]), sequence }

    public init(spec: TokenizerSpec) throws {
        vocab = spec.vocab
        try Self.validate(spec)
        var ids: [String: Int] = [:]
        for (i, t) in spec.vocab.enumerated() where ids[t] == nil { ids[t] = i }
        self.ids = ids
        var ranks: [String: Int] = [:]
        for (i, m) in spec.merges.enumerated() where ranks[m] == nil { ranks[m] = i }
        self.ranks = ranks
        normalizer = try Normalizer(json: try JSONValue.parse(spec.normalizerJSON, what: "normalizer"))
        preTokenizer = try PreTokenizer(json: try JSONValue.parse(spec.preTokenizerJSON, what: "pre_tokenizer"))
        byteFallback = spec.byteFallback
        ignoreMerges = spec.ignoreMerges
        unkId = spec.unkToken.isEmpty ? nil : ids[spec.unkToken]
        fuseUnk = spec.fuseUnk
        var added: [(String, Int, Bool, Bool, Bool)] = []
        var special = Set<Int>()
        for a in try JSONValue.parse(spec.addedTokensJSON, what: "added_tokens") as? [[String: Any]] ?? [] {
            guard let c = a["content"] as? String, let id = (a["id"] as? JSONNumber)?.intValue, !c.isEmpty else { continue }
            // An added token is a vocabulary entry: same id, same text (else one id means two tokens).
            guard id >= 0, id < spec.vocab.count else {
                throw SinkKitError(.malformedHeader, "tokenizer added token \"\(c.prefix(40))\" has id \(id), outside the \(spec.vocab.count)-token vocabulary")
            }
            guard spec.vocab[id].utf8.elementsEqual(c.utf8) else {
                throw SinkKitError(.malformedHeader, "tokenizer id \(id) is used twice: by \"\(spec.vocab[id].prefix(40))\" in the vocabulary and by the added token \"\(c.prefix(40))\"")
            }
            let isSpecial = a["special"] as? Bool ?? false
            added.append((c, id, isSpecial, a["lstrip"] as? Bool ?? false, a["rstrip"] as? Bool ?? false))
            if isSpecial { special.insert(id) }
        }
        self.added = added.sorted { $0.0.count > $1.0.count }.map { (content: $0.0, id: $0.1, special: $0.2, lstrip: $0.3, rstrip: $0.4) }
        specialIds = special
        addedBytes = self.added.map { Array($0.content.utf8) }

        // Post-processor: TemplateProcessing's single-sequence template adds BOS/EOS.
        var single: [Either] = [.sequence]
        if let pp = try JSONValue.parse(spec.postProcessorJSON, what: "post_processor") as? [String: Any] {
            let procs = (pp["type"] as? String) == "Sequence" ? (pp["processors"] as? [[String: Any]] ?? []) : [pp]
            for p in procs where (p["type"] as? String) == "TemplateProcessing" {
                let specials = p["special_tokens"] as? [String: [String: Any]] ?? [:]
                single = try (p["single"] as? [[String: Any]] ?? []).map { piece in
                    if let st = piece["SpecialToken"] as? [String: Any], let name = st["id"] as? String {
                        let list = (specials[name]?["ids"] as? [Any])?.compactMap { ($0 as? JSONNumber)?.intValue } ?? ids[name].map { [$0] } ?? []
                        guard !list.isEmpty else { throw SinkKitError(.malformedHeader, "tokenizer template names unknown special token \(name)") }
                        for id in list where id < 0 || id >= spec.vocab.count {
                            throw SinkKitError(.malformedHeader, "tokenizer template's special token \(name) has id \(id), outside the \(spec.vocab.count)-token vocabulary")
                        }
                        return .special(list)
                    }
                    return .sequence
                }
            }
        }
        templateSingle = single
        bosToken = spec.bosToken
        eosToken = spec.eosToken
        bosId = spec.bosToken.isEmpty ? nil : ids[spec.bosToken]
        eosId = spec.eosToken.isEmpty ? nil : ids[spec.eosToken]
        for (what, token, id) in [("bos_token", spec.bosToken, bosId), ("eos_token", spec.eosToken, eosId), ("unk_token", spec.unkToken, unkId)]
            where !token.isEmpty && id == nil {
            throw SinkKitError(.malformedHeader, "tokenizer \(what) \"\(token.prefix(40))\" is not in the vocabulary")
        }
        chatTemplate = spec.chatTemplate

        // Decoder → bytes per token.
        let dec = try JSONValue.parse(spec.decoderJSON, what: "decoder") as? [String: Any]
        let steps: [[String: Any]] = (dec?["type"] as? String) == "Sequence" ? (dec?["decoders"] as? [[String: Any]] ?? []) : (dec.map { [$0] } ?? [])
        var strip = 0
        var byteLevelDecoder = false, byteFallbackDecoder = false
        var replaces: [(String, String)] = []
        for s in steps {
            switch s["type"] as? String ?? "" {
            case "ByteLevel": byteLevelDecoder = true
            case "ByteFallback": byteFallbackDecoder = true
            case "Fuse": break
            case "Replace":
                if let p = (s["pattern"] as? [String: Any])?["String"] as? String { replaces.append((p, s["content"] as? String ?? "")) }
            case "Strip":
                if (s["content"] as? String ?? " ") == " " { strip = (s["start"] as? JSONNumber)?.intValue ?? 0 }
            case "Metaspace":
                let rep = s["replacement"] as? String ?? "▁"
                replaces.append((rep, " "))
                let scheme = (s["prepend_scheme"] as? String ?? ((s["add_prefix_space"] as? Bool ?? true) ? "always" : "never")).lowercased()
                if scheme != "never" { strip = 1 }
            case let t:
                throw SinkKitError(.refused, "tokenizer decoder \(t) is not supported")
            }
        }
        stripLeading = strip
        func decoded(_ tok: String) -> [UInt8] {
            if byteLevelDecoder {
                var out: [UInt8] = []
                for ch in tok {
                    if let b = ByteLevel.charToByte[ch] { out.append(b) } else { out += Array(String(ch).utf8) }
                }
                return out
            }
            if byteFallbackDecoder, tok.count == 6, tok.hasPrefix("<0x"), tok.hasSuffix(">"), let b = UInt8(tok.dropFirst(3).dropLast(), radix: 16) {
                return [b]
            }
            var s = tok
            for (p, c) in replaces { s = Normalizer.replaceLiteral(s, p, c) }
            return Array(s.utf8)
        }
        var flat: [UInt8] = [], starts: [Int32] = [0]
        flat.reserveCapacity(spec.vocab.count * 8)
        starts.reserveCapacity(spec.vocab.count + 1)
        for tok in spec.vocab {
            flat += decoded(tok)
            starts.append(Int32(flat.count))
        }
        tokenBytesFlat = flat
        tokenBytesStart = starts
    }

    /// What tokenizers' BPE model refuses when it is built, and what would make token ids
    /// ambiguous: an empty or oversized vocabulary, a token listed twice, a merge that is not
    /// "left right" of two vocabulary tokens whose concatenation is a vocabulary token.
    static func validate(_ spec: TokenizerSpec) throws {
        guard !spec.vocab.isEmpty, spec.vocab.count <= Limits.maxVocab else {
            throw SinkKitError(.malformedHeader, "tokenizer vocabulary has \(spec.vocab.count) tokens (expected 1 to \(Limits.maxVocab))")
        }
        var seen = [ByteKey: Int](minimumCapacity: spec.vocab.count)
        for (i, t) in spec.vocab.enumerated() {
            if let j = seen.updateValue(i, forKey: ByteKey(t)) {
                throw SinkKitError(.malformedHeader, "tokenizer token \"\(t.prefix(40))\" appears twice in the vocabulary (ids \(j) and \(i))")
            }
        }
        for (k, m) in spec.merges.enumerated() {
            let parts = m.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw SinkKitError(.malformedHeader, "tokenizer merge \(k) \"\(m.prefix(60))\" is not two tokens separated by one space")
            }
            for t in [String(parts[0]), String(parts[1]), String(parts[0]) + String(parts[1])] where seen[ByteKey(t)] == nil {
                throw SinkKitError(.malformedHeader, "tokenizer merge \(k) \"\(m.prefix(60))\" names \"\(t.prefix(40))\", which is not in the vocabulary")
            }
        }
    }

    // MARK: encoding

    /// Token ids of `text`; `addSpecialTokens` applies the post-processor's template (BOS).
    public func encode(_ text: String, addSpecialTokens: Bool = false) -> [Int] {
        var out: [Int] = []
        var first = true
        for seg in splitAdded(text) {
            switch seg {
            case .token(let id): out.append(id)
            case .text(let s):
                var t = s
                if let n = normalizer { t = n.apply(t) }
                if t.isEmpty { continue }
                let pieces = preTokenizer?.apply([t], first: first) ?? [t]
                for p in pieces { out += bpe(p) }
            }
            first = false
        }
        guard addSpecialTokens else { return out }
        return templateSingle.flatMap { piece -> [Int] in
            switch piece { case .special(let ids): return ids; case .sequence: return out }
        }
    }

    enum Segment { case text(String), token(Int) }

    /// Splits off added tokens, leftmost-longest, honouring lstrip/rstrip. Matching is on UTF-8
    /// bytes, as tokenizers does: a special token followed by a combining mark still matches
    /// (Swift's Character comparison would see one grapheme and miss it).
    func splitAdded(_ text: String) -> [Segment] {
        guard !added.isEmpty else { return [.text(text)] }
        let bytes = Array(text.utf8)
        var segs: [Segment] = []
        var start = 0, i = 0
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        while i < bytes.count {
            var hit: Int?
            for (k, a) in addedBytes.enumerated() where a.count <= bytes.count - i && bytes[i] == a[0] {
                if bytes[i..<(i + a.count)].elementsEqual(a) { hit = k; break }   // longest first
            }
            guard let k = hit else { i += 1; continue }
            let a = added[k]
            var end = i
            if a.lstrip { while end > start, isSpace(bytes[end - 1]) { end -= 1 } }
            if end > start { segs.append(.text(String(decoding: bytes[start..<end], as: UTF8.self))) }
            segs.append(.token(a.id))
            i += addedBytes[k].count
            if a.rstrip { while i < bytes.count, isSpace(bytes[i]) { i += 1 } }
            start = i
        }
        if start < bytes.count { segs.append(.text(String(decoding: bytes[start...], as: UTF8.self))) }
        return segs
    }

    /// BPE on one pre-token: merges by rank (lowest first, leftmost on ties), then ids, with
    /// byte fallback or the unknown token for symbols outside the vocabulary.
    func bpe(_ word: String) -> [Int] {
        cacheLock.lock()
        if let c = cache[word] { cacheLock.unlock(); return c }
        cacheLock.unlock()
        var result: [Int]
        if ignoreMerges, let id = ids[word] {
            result = [id]
        } else {
            var symbols = word.unicodeScalars.map { String($0) }
            while symbols.count > 1 {
                var bestRank = Int.max, bestAt = -1
                for i in 0..<(symbols.count - 1) {
                    if let r = ranks[symbols[i] + " " + symbols[i + 1]], r < bestRank { bestRank = r; bestAt = i }
                }
                if bestAt < 0 { break }
                symbols[bestAt] += symbols[bestAt + 1]
                symbols.remove(at: bestAt + 1)
            }
            result = []
            var lastWasUnk = false
            for s in symbols {
                if let id = ids[s] { result.append(id); lastWasUnk = false; continue }
                if byteFallback {
                    let bytes = Array(s.utf8).map { String(printf: "<0x%02X>", $0) }
                    if bytes.allSatisfy({ ids[$0] != nil }) { result += bytes.map { ids[$0]! }; lastWasUnk = false; continue }
                }
                if let u = unkId, !(fuseUnk && lastWasUnk) { result.append(u) }
                lastWasUnk = true
            }
        }
        cacheLock.lock()
        if cache.count < 100_000 { cache[word] = result }
        cacheLock.unlock()
        return result
    }

    // MARK: decoding

    /// Text of a token sequence (invalid UTF-8 replaced), special tokens optionally skipped.
    public func decode(_ tokens: [Int], skipSpecialTokens: Bool = false) -> String {
        var d = StreamDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
        var s = ""
        for t in tokens { s += d.push(t) }
        return s + d.flush()
    }

    public func isSpecial(_ id: Int) -> Bool { specialIds.contains(id) }
}

/// Turns a token stream into text without ever printing half a UTF-8 character: bytes are held
/// back until they complete a character.
public struct StreamDecoder {
    let tokenizer: Tokenizer
    let skipSpecialTokens: Bool
    var pending: [UInt8] = []
    var atStart = true

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    public mutating func push(_ id: Int) -> String {
        guard id >= 0, id < tokenizer.tokenCount else { return "" }
        if skipSpecialTokens && tokenizer.isSpecial(id) { return "" }
        var bytes = Array(tokenizer.tokenBytes(id))
        if atStart && !bytes.isEmpty {
            var n = tokenizer.stripLeading
            while n > 0, bytes.first == 0x20 { bytes.removeFirst(); n -= 1 }
            atStart = false
        }
        pending += bytes
        // Emit the longest prefix that ends on a character boundary.
        var end = pending.count
        var i = pending.count - 1, back = 0
        while i >= 0 && back < 4 {
            let b = pending[i]
            if b & 0xC0 != 0x80 {  // a lead byte (or ASCII): is its sequence complete?
                let need = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
                if pending.count - i < need { end = i }
                break
            }
            i -= 1
            back += 1
        }
        let out = String(decoding: pending[0..<end], as: UTF8.self)
        pending.removeFirst(end)
        return out
    }

    public mutating func flush() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }
}

