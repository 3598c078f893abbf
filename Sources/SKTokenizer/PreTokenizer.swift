import Foundation
import SKCore

/// Hugging Face pre-tokenizers used by LLaMA-family tokenizers: Sequence, ByteLevel (GPT-2
/// regex + byte map), Digits, Split (regex or string, every behaviour), Metaspace.
indirect enum PreTokenizer {
    enum Behavior: String { case Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous }

    case sequence([PreTokenizer])
    case byteLevel(addPrefixSpace: Bool, regex: NSRegularExpression?)
    case digits(individual: Bool)
    case split(NSRegularExpression, Behavior, invert: Bool)
    case metaspace(replacement: String, prependScheme: String, split: Bool, splitter: NSRegularExpression)

    static let digitRuns = try! NSRegularExpression(pattern: #"\p{Nd}+"#)
    static let digit = try! NSRegularExpression(pattern: #"\p{Nd}"#)

    init?(json: Any?) throws {
        guard let d = json as? [String: Any], let type = d["type"] as? String else { return nil }
        switch type {
        case "Sequence":
            self = .sequence(try (d["pretokenizers"] as? [Any] ?? []).compactMap { try PreTokenizer(json: $0) })
        case "ByteLevel":
            let useRegex = d["use_regex"] as? Bool ?? true
            self = .byteLevel(addPrefixSpace: d["add_prefix_space"] as? Bool ?? false,
                              regex: useRegex ? try Normalizer.regex(ByteLevel.pattern) : nil)
        case "Digits":
            self = .digits(individual: d["individual_digits"] as? Bool ?? false)
        case "Split":
            let p = d["pattern"] as? [String: Any] ?? [:]
            let re: NSRegularExpression
            if let r = p["Regex"] as? String { re = try Normalizer.regex(r) }
            else if let s = p["String"] as? String { re = try Normalizer.regex(NSRegularExpression.escapedPattern(for: s)) }
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
                              splitter: try Normalizer.regex(NSRegularExpression.escapedPattern(for: rep)))
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
            return pieces.flatMap { Self.split($0, individual ? Self.digit : Self.digitRuns, .Isolated, invert: false) }
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
    static func split(_ s: String, _ re: NSRegularExpression, _ behavior: Behavior, invert: Bool) -> [String] {
        let ns = s as NSString
        var spans: [(NSRange, Bool)] = []   // (range, isMatch)
        var last = 0
        for m in re.matches(in: s, range: NSRange(location: 0, length: ns.length)) where m.range.length > 0 {
            if m.range.location > last { spans.append((NSRange(location: last, length: m.range.location - last), false)) }
            spans.append((m.range, true))
            last = m.range.location + m.range.length
        }
        if last < ns.length { spans.append((NSRange(location: last, length: ns.length - last), false)) }
        if invert { spans = spans.map { ($0.0, !$0.1) } }
        var out: [String] = []
        switch behavior {
        case .Isolated:
            out = spans.map { ns.substring(with: $0.0) }
        case .Removed:
            out = spans.filter { !$0.1 }.map { ns.substring(with: $0.0) }
        case .MergedWithPrevious:
            for (r, isMatch) in spans {
                if isMatch, !out.isEmpty { out[out.count - 1] += ns.substring(with: r) } else { out.append(ns.substring(with: r)) }
            }
        case .MergedWithNext:
            var pending = ""
            for (r, isMatch) in spans {
                if isMatch { if !pending.isEmpty { out.append(pending) }; pending = ns.substring(with: r) }
                else { out.append(pending + ns.substring(with: r)); pending = "" }
            }
            if !pending.isEmpty { out.append(pending) }
        case .Contiguous:
            var prevMatch: Bool?
            for (r, isMatch) in spans {
                if isMatch == prevMatch, !out.isEmpty { out[out.count - 1] += ns.substring(with: r) } else { out.append(ns.substring(with: r)) }
                prevMatch = isMatch
            }
        }
        return out.filter { !$0.isEmpty }
    }
}
