import SKCore

/// A pattern that a tokenizer splits text by (a pre-tokenizer's Split, ByteLevel's GPT-2 regex,
/// Digits, Metaspace) or replaces (a Replace normalizer). Matching is over Unicode scalars, as
/// Hugging Face tokenizers' Oniguruma matches over `char`s: one scalar is one character, a
/// combining mark never joins the letter before it.
///
/// Regexes run in the Swift standard library's engine (no ICU, so the runtime needs only
/// FoundationEssentials). The patterns LLaMA-family tokenizers use most have exact hand-written
/// matchers instead, several times faster: GPT-2's byte-level pattern, the Digits pre-tokenizer's
/// numeric characters (Rust's `char::is_numeric`: \p{N}, one by one or in runs) and literal
/// strings; `TextPatternTests` checks each against the regex engine.
enum TextPattern: @unchecked Sendable {
    case literal([Unicode.Scalar])
    case gpt2
    case numeric(runs: Bool)
    case regex(Regex<AnyRegexOutput>)

    /// A pattern from a tokenizer file; refused when it has a shape that backtracks
    /// exponentially (`RegexSafety`) or when the engine does not accept it.
    init(regex source: String) throws {
        if source == ByteLevel.pattern { self = .gpt2; return }
        try RegexSafety.check(source)
        do { self = .regex(try Regex(Self.scalarEscaped(source)).matchingSemantics(.unicodeScalar)) } catch {
            throw SinkKitError(.refused, "tokenizer regex \(String(source.prefix(80))) is not supported by this engine (\(error))")
        }
    }

    /// The regex engine for `source` with no hand-written matcher (for tests).
    static func engine(_ source: String) throws -> TextPattern {
        .regex(try Regex(scalarEscaped(source)).matchingSemantics(.unicodeScalar))
    }

    /// `source` with every non-ASCII scalar written as `\\u{HEX}`, and each class range that Swift's
    /// regex parser refuses spelled out scalar by scalar. The parser compares a range's bounds as
    /// Characters, by canonical equivalence, so `ῐ-ΐ` (U+1FD0 to U+1FD3, in DeepSeek's tokenizer)
    /// reads as reversed (U+1FD3 is canonically U+0390), and `K-ℭ` from the Kelvin sign is refused too.
    /// Oniguruma and llama.cpp compare scalars. A backslash before a non-ASCII scalar (an
    /// escaped literal) is dropped: the escape is already literal.
    static func scalarEscaped(_ source: String) -> String {
        guard source.unicodeScalars.contains(where: { !$0.isASCII }) else { return source }
        let s = Array(source.unicodeScalars)
        var out = String.UnicodeScalarView()
        func esc(_ u: Unicode.Scalar) { out.append(contentsOf: "\\u{\(String(u.value, radix: 16))}".unicodeScalars) }
        var escaped = false, classDepth = 0, i = 0
        while i < s.count {
            let u = s[i]
            if !escaped, classDepth > 0, u != "\\", i + 2 < s.count, s[i + 1] == "-", s[i + 2] != "\\", s[i + 2] != "]",
               !u.isASCII || !s[i + 2].isASCII {
                let a = u, b = s[i + 2]
                if a.value <= b.value, b.value - a.value < 4096,
                   String(Character(a)) > String(Character(b)) || (try? Regex("[\\u{\(String(a.value, radix: 16))}-\\u{\(String(b.value, radix: 16))}]")) == nil {
                    for v in a.value...b.value { if let x = Unicode.Scalar(v) { esc(x) } }
                } else {
                    a.isASCII ? out.append(a) : esc(a)
                    out.append("-")
                    b.isASCII ? out.append(b) : esc(b)
                }
                i += 3
                continue
            }
            if u.isASCII {
                out.append(u)
                if !escaped && u == "[" { classDepth += 1 }
                if !escaped && u == "]" && classDepth > 0 { classDepth -= 1 }
                escaped = !escaped && u == "\\"
            } else {
                if escaped { out.removeLast() }
                esc(u)
                escaped = false
            }
            i += 1
        }
        return String(out)
    }

    /// The non-empty matches in `s`, left to right, not overlapping.
    func matches(in s: String) -> [Range<String.Index>] {
        switch self {
        case .regex(let re):
            return s.matches(of: re).map(\.range).filter { !$0.isEmpty }
        case .literal(let p):
            guard !p.isEmpty else { return [] }
            return Self.scan(s) { c, i in
                i + p.count <= c.count && c[i] == p[0] && c[i..<(i + p.count)].elementsEqual(p) ? p.count : 0
            }
        case .numeric(let runs):
            return Self.scan(s) { c, i in
                guard Self.classOf(c[i]) == .number else { return 0 }
                guard runs else { return 1 }
                var j = i + 1
                while j < c.count, Self.classOf(c[j]) == .number { j += 1 }
                return j - i
            }
        case .gpt2:
            return Self.scan(s, Self.gpt2Match)
        }
    }

    /// Runs `matchAt` (the length of the match starting at scalar `i`, 0 for none) left to
    /// right and returns the matches as index ranges of `s`.
    private static func scan(_ s: String, _ matchAt: ([Unicode.Scalar], Int) -> Int) -> [Range<String.Index>] {
        let c = Array(s.unicodeScalars)
        var out: [Range<String.Index>] = []
        var idx = s.unicodeScalars.startIndex
        var pos = 0
        var i = 0
        while i < c.count {
            let n = matchAt(c, i)
            if n == 0 { i += 1; continue }
            let lo = s.unicodeScalars.index(idx, offsetBy: i - pos)
            let hi = s.unicodeScalars.index(lo, offsetBy: n)
            out.append(lo..<hi)
            idx = hi
            pos = i + n
            i += n
        }
        return out
    }

    // MARK: GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+

    private static func gpt2Match(_ c: [Unicode.Scalar], _ i: Int) -> Int {
        let n = c.count
        // 's|'t|'re|'ve|'m|'ll|'d (in that order; the first that matches wins).
        if c[i] == "'", i + 1 < n {
            switch c[i + 1] {
            case "s", "t", "m", "d": return 2
            case "r", "v": if i + 2 < n, c[i + 2] == "e" { return 3 }
            case "l": if i + 2 < n, c[i + 2] == "l" { return 3 }
            default: break
            }
        }
        //  ?\p{L}+,  ?\p{N}+,  ?[^\s\p{L}\p{N}]+ : an optional space, then a run of one class.
        let start = c[i] == " " && i + 1 < n ? i + 1 : i
        for cls in [Class.letter, .number, .other] {
            var j = start
            while j < n, classOf(c[j]) == cls { j += 1 }
            if j > start { return j - i }
            // (Without the space the run would start at the space, which is in none of the three.)
        }
        // \s+(?!\S) then \s+ : a whitespace run, less its last character when a non-space follows
        // (unless the run is that one character).
        guard classOf(c[i]) == .space else { return 0 }
        var j = i + 1
        while j < n, classOf(c[j]) == .space { j += 1 }
        if j == n || j - i == 1 { return j - i }
        return j - i - 1
    }

    enum Class { case letter, number, space, other }

    @inline(__always)
    static func classOf(_ u: Unicode.Scalar) -> Class {
        let v = u.value
        if v < 0x80 {
            if (0x61...0x7A).contains(v) || (0x41...0x5A).contains(v) { return .letter }
            if (0x30...0x39).contains(v) { return .number }
            if v == 0x20 || (0x09...0x0D).contains(v) { return .space }
            return .other
        }
        if u.properties.isWhitespace { return .space }
        switch u.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }
}
