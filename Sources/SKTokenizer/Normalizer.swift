import Foundation
import SKCore

/// Hugging Face tokenizers normalizers that LLaMA-family tokenizers use: Sequence, Prepend,
/// Replace (string or regex), NFC/NFD/NFKC/NFKD, Lowercase, Strip.
indirect enum Normalizer {
    case sequence([Normalizer])
    case prepend(String)
    case replace(NSRegularExpression?, String, String)   // regex, or literal pattern, content
    case nfc, nfd, nfkc, nfkd, lowercase
    case strip(Bool, Bool)

    init?(json: Any?) throws {
        guard let d = json as? [String: Any], let type = d["type"] as? String else { return nil }
        switch type {
        case "Sequence":
            self = .sequence(try (d["normalizers"] as? [Any] ?? []).compactMap { try Normalizer(json: $0) })
        case "Prepend": self = .prepend(d["prepend"] as? String ?? "")
        case "Replace":
            let p = d["pattern"] as? [String: Any] ?? [:]
            let content = d["content"] as? String ?? ""
            if let s = p["String"] as? String { self = .replace(nil, s, content) }
            else if let r = p["Regex"] as? String { self = .replace(try Self.regex(r), r, content) }
            else { throw SinkKitError(.refused, "tokenizer normalizer Replace has no pattern") }
        case "NFC": self = .nfc
        case "NFD": self = .nfd
        case "NFKC": self = .nfkc
        case "NFKD": self = .nfkd
        case "Lowercase": self = .lowercase
        case "Strip": self = .strip(d["strip_left"] as? Bool ?? true, d["strip_right"] as? Bool ?? true)
        default: throw SinkKitError(.refused, "tokenizer normalizer \(type) is not supported")
        }
    }

    static func regex(_ p: String) throws -> NSRegularExpression {
        try RegexSafety.check(p)
        do { return try NSRegularExpression(pattern: p) } catch {
            throw SinkKitError(.refused, "tokenizer regex \(p) is not supported by this engine")
        }
    }

    /// Replaces every occurrence of `pattern` by unicode scalars, ignoring grapheme boundaries
    /// (a space before a combining mark is still a space to tokenizers).
    static func replaceLiteral(_ s: String, _ pattern: String, _ content: String) -> String {
        let p = Array(pattern.unicodeScalars), src = Array(s.unicodeScalars)
        guard !p.isEmpty else { return s }
        var out = String.UnicodeScalarView()
        var i = 0
        while i < src.count {
            if src[i] == p[0], i + p.count <= src.count, src[i..<(i + p.count)].elementsEqual(p) {
                out.append(contentsOf: content.unicodeScalars)
                i += p.count
            } else {
                out.append(src[i])
                i += 1
            }
        }
        return String(out)
    }

    func apply(_ s: String) -> String {
        switch self {
        case .sequence(let l): return l.reduce(s) { $1.apply($0) }
        case .prepend(let p): return s.isEmpty ? s : p + s
        case .replace(let re, let pat, let content):
            if let re { return re.stringByReplacingMatches(in: s, range: NSRange(s.startIndex..., in: s), withTemplate: NSRegularExpression.escapedTemplate(for: content)) }
            return Self.replaceLiteral(s, pat, content)
        case .nfc: return s.precomposedStringWithCanonicalMapping
        case .nfd: return s.decomposedStringWithCanonicalMapping
        case .nfkc: return s.precomposedStringWithCompatibilityMapping
        case .nfkd: return s.decomposedStringWithCompatibilityMapping
        case .lowercase: return s.lowercased()
        case .strip(let l, let r):
            var t = Substring(s)
            if l { t = t.drop(while: { $0.isWhitespace }) }
            if r { while let last = t.last, last.isWhitespace { t = t.dropLast() } }
            return String(t)
        }
    }
}
