#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKCore

/// Hugging Face pre-tokenizers used by LLaMA-family tokenizers: Sequence, ByteLevel (GPT-2
/// regex + byte map), Digits, Split (regex or string, every behaviour), Metaspace.
indirect enum PreTokenizer {
    enum Behavior: String { case Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous }

    case sequence([PreTokenizer])
    case byteLevel(addPrefixSpace: Bool, regex: TextPattern?)
    case digits(individual: Bool)
    case split(TextPattern, Behavior, invert: Bool)
    case metaspace(replacement: String, prependScheme: String, split: Bool, splitter: TextPattern)

    init?(json: Any?) throws {
        guard let d = json as? [String: Any], let type = d["type"] as? String else { return nil }
        switch type {
        case "Sequence":
            self = .sequence(try (d["pretokenizers"] as? [Any] ?? []).compactMap { try PreTokenizer(json: $0) })
        case "ByteLevel":
            let useRegex = d["use_regex"] as? Bool ?? true
            self = .byteLevel(addPrefixSpace: d["add_prefix_space"] as? Bool ?? false,
                              regex: useRegex ? .gpt2 : nil)
        case "Digits":
            self = .digits(individual: d["individual_digits"] as? Bool ?? false)
        case "Split":
            let p = d["pattern"] as? [String: Any] ?? [:]
            let re: TextPattern
            if let r = p["Regex"] as? String { re = try TextPattern(regex: r) }
            else if let s = p["String"] as? String { re = .literal(Array(s.unicodeScalars)) }
            else { throw SinkKitError(.refused, "tokenizer Split pre-tokenizer has no pattern") }
            guard let b = Behavior(rawValue: d["behavior"] as? String ?? "Isolated") else {
                throw SinkKitError(.refused, "tokenizer Split behavior \(d["behavior"] ?? "") is not supported")
            }
            self = .split(re, b, invert: d["invert"] as? Bool ?? false)
        case "Metaspace":
            var scheme = d["prepend_scheme"] as? String ?? ((d["add_prefix_space"] as? Bool ?? true) ? "always" : "never")
            scheme = scheme.lowercased()
            guard ["always", "never", "first"].contains(scheme) else {
                throw SinkKitError(.refused, "tokenizer Metaspace prepend_scheme \(scheme) is not one of always, never, first")
            }
            let rep = d["replacement"] as? String ?? "▁"
            // tokenizers' Metaspace replacement is one `char`: an empty or longer one is not a Metaspace.
            guard rep.unicodeScalars.count == 1 else {
                throw SinkKitError(.refused, "tokenizer Metaspace replacement \"\(rep.prefix(20))\" must be exactly one character")
            }
            self = .metaspace(replacement: rep, prependScheme: scheme, split: d["split"] as? Bool ?? true,
                              splitter: .literal(Array(rep.unicodeScalars)))
        default:
            throw SinkKitError(.refused, "tokenizer pre-tokenizer \(type) is not supported")
        }
    }

    /// Whether the pieces it produces are byte-level encoded (for the BPE model).
    var isByteLevel: Bool {
        switch self {
        case .byteLevel: return true
        case .sequence(let l): return l.contains { $0.isByteLevel }
        default: return false
        }
    }

    /// Splits pieces further. `first` says whether the first piece starts the input text.
    func apply(_ pieces: [String], first: Bool) -> [String] {
        switch self {
        case .sequence(let l):
            return l.reduce(pieces) { $1.apply($0, first: first) }
        case .byteLevel(let prefix, let re):
            var out: [String] = []
            for p in pieces {
                let s = prefix && p.utf8.first != 0x20 ? " " + p : p
                let parts = re.map { Self.split(s, $0, .Isolated, invert: false) } ?? [s]
                out += parts.map { ByteLevel.encode(Substring($0)) }
            }
            return out
        case .digits(let individual):
            return pieces.flatMap { Self.split($0, .numeric(runs: !individual), .Isolated, invert: false) }
        case .split(let re, let b, let invert):
            return pieces.flatMap { Self.split($0, re, b, invert: invert) }
        case .metaspace(let rep, let scheme, let doSplit, let splitter):
            var out: [String] = []
            for (i, p) in pieces.enumerated() {
                var s = Normalizer.replaceLiteral(p, " ", rep)
                if (scheme == "always" || (scheme == "first" && first && i == 0)) && !s.unicodeScalars.starts(with: rep.unicodeScalars) { s = rep + s }
                if doSplit {
                    out += Self.split(s, splitter, .MergedWithNext, invert: false)
                } else {
                    out.append(s)
                }
            }
            return out
        }
    }

    /// tokenizers' `split` with a pattern and a behaviour.
    static func split(_ s: String, _ re: TextPattern, _ behavior: Behavior, invert: Bool) -> [String] {
        var spans: [(Range<String.Index>, Bool)] = []   // (range, isMatch)
        var last = s.startIndex
        for m in re.matches(in: s) {
            if m.lowerBound > last { spans.append((last..<m.lowerBound, false)) }
            spans.append((m, true))
            last = m.upperBound
        }
        if last < s.endIndex { spans.append((last..<s.endIndex, false)) }
        if invert { spans = spans.map { ($0.0, !$0.1) } }
        func text(_ r: Range<String.Index>) -> String { String(s.unicodeScalars[r]) }
        var out: [String] = []
        switch behavior {
        case .Isolated:
            out = spans.map { text($0.0) }
        case .Removed:
            out = spans.filter { !$0.1 }.map { text($0.0) }
        case .MergedWithPrevious:
            for (r, isMatch) in spans {
                if isMatch, !out.isEmpty { out[out.count - 1] += text(r) } else { out.append(text(r)) }
            }
        case .MergedWithNext:
            var pending = ""
            for (r, isMatch) in spans {
                if isMatch { if !pending.isEmpty { out.append(pending) }; pending = text(r) }
                else { out.append(pending + text(r)); pending = "" }
            }
            if !pending.isEmpty { out.append(pending) }
        case .Contiguous:
            var prevMatch: Bool?
            for (r, isMatch) in spans {
                if isMatch == prevMatch, !out.isEmpty { out[out.count - 1] += text(r) } else { out.append(text(r)) }
                prevMatch = isMatch
            }
        }
        return out.filter { !$0.isEmpty }
    }
}
