@_spi(_Unicode) import Swift
import SKCore

/// Hugging Face tokenizers normalizers that LLaMA-family tokenizers use: Sequence, Prepend,
/// Replace (string or regex), NFC/NFD/NFKC/NFKD, Lowercase, Strip.
indirect enum Normalizer {
    case sequence([Normalizer])
    case prepend(String)
    case replace(TextPattern, String)   // pattern (a regex or a literal string), content
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
            if let s = p["String"] as? String { self = .replace(.literal(Array(s.unicodeScalars)), content) }
            else if let r = p["Regex"] as? String { self = .replace(try TextPattern(regex: r), content) }
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
        case .replace(.literal(let p), let content):
            return Self.replaceLiteral(s, String(String.UnicodeScalarView(p)), content)
        case .replace(let pattern, let content):
            var out = String.UnicodeScalarView()
            var last = s.startIndex
            for m in pattern.matches(in: s) {
                out.append(contentsOf: s.unicodeScalars[last..<m.lowerBound])
                out.append(contentsOf: content.unicodeScalars)
                last = m.upperBound
            }
            out.append(contentsOf: s.unicodeScalars[last...])
            return String(out)
        case .nfc: return String(String.UnicodeScalarView(s._nfc))
        case .nfd: return String(String.UnicodeScalarView(s._nfd))
        case .nfkc: return String(String.UnicodeScalarView(Self.nfkd(s)._nfc))
        case .nfkd: return Self.nfkd(s)
        case .lowercase: return s.lowercased()
        case .strip(let l, let r):
            var t = Substring(s)
            if l { t = t.drop(while: { $0.isWhitespace }) }
            if r { while let last = t.last, last.isWhitespace { t = t.dropLast() } }
            return String(t)
        }
    }

    /// NFKD: each scalar's compatibility decomposition (the generated table), then the standard
    /// library's canonical decomposition and reordering over the whole text.
    static func nfkd(_ s: String) -> String {
        var mapped = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            if let d = compatibility[u.value] { mapped.append(contentsOf: d) } else { mapped.append(u) }
        }
        return String(String.UnicodeScalarView(String(mapped)._nfd))
    }

    static let compatibility: [UInt32: [Unicode.Scalar]] = {
        var d: [UInt32: [Unicode.Scalar]] = [:]
        for line in CompatibilityDecompositions.table.split(separator: "\n") {
            let parts = line.split(separator: ":")
            guard parts.count == 2, let cp = UInt32(parts[0], radix: 16) else { continue }
            d[cp] = parts[1].split(separator: " ").compactMap { UInt32($0, radix: 16).flatMap(Unicode.Scalar.init) }
        }
        return d
    }()
}
