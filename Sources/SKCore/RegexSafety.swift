/// Regexes from strangers' files (a tokenizer.json's pre-tokenizer and normalizer, an adapter's
/// target_modules and rank/alpha patterns) run in a backtracking engine (ICU). The patterns that
/// make such an engine take exponential time are a repeated group that can match the same text in
/// more than one way: a group holding an alternation or a quantifier, itself under `*`, `+` or
/// `{n,m}` (`(a|aa)+$`, `(a+)+`). No real tokenizer uses that shape (GPT-2's, Llama-3's, Qwen2's,
/// DeepSeek's and the others' pre-tokenizer patterns quantify only characters and classes, or
/// make a group optional with `?`), so it is refused when the tokenizer is read rather than left to
/// stall a prompt or a merge. (PEFT's own `(.*\.)?(KEY)$` wrapper quantifies its group with `?`,
/// which cannot repeat, and passes.)
public enum RegexSafety {
    /// Refuses `pattern` (naming it as `what`) when it has the shape above.
    public static func check(_ pattern: String, what: String = "tokenizer regex") throws {
        let c = Array(pattern.unicodeScalars)
        // Per open group: (holds an alternation, holds a quantifier).
        var stack: [(alt: Bool, quant: Bool)] = [(false, false)]
        var i = 0
        func refuse(_ why: String) -> SinkKitError {
            SinkKitError(.refused, "\(what) \(String(pattern.prefix(80))) \(why): a repeated group that can match the same text in several ways makes matching take exponential time")
        }
        /// Whether a quantifier that repeats (not `?`) starts at `j`, and where it ends.
        func repetition(at j: Int) -> (repeats: Bool, end: Int)? {
            guard j < c.count else { return nil }
            switch c[j] {
            case "*", "+": return (true, j + 1)
            case "?": return (false, j + 1)
            case "{":
                var k = j + 1, text = ""
                while k < c.count, c[k] != "}" { text.unicodeScalars.append(c[k]); k += 1 }
                guard k < c.count else { return nil }
                let parts = text.split(separator: ",", omittingEmptySubsequences: false)
                let hi = parts.count == 2 ? (parts[1].isEmpty ? Int.max : Int(parts[1]) ?? 1) : Int(parts.first ?? "") ?? 1
                return (hi > 1, k + 1)
            default: return nil
            }
        }
        func markQuantifier() { stack[stack.count - 1].quant = true }
        while i < c.count {
            let ch = c[i]
            switch ch {
            case "\\":
                // An escape: one character, or a braced form (\p{L}, \x{41}, \N{…}).
                if i + 2 < c.count, ["p", "P", "x", "N"].contains(c[i + 1]), c[i + 2] == "{" {
                    var k = i + 3
                    while k < c.count, c[k] != "}" { k += 1 }
                    i = k + 1
                } else {
                    i += 2
                }
                if let q = repetition(at: i) { markQuantifier(); i = q.end }
                continue
            case "[":
                // A character class (ICU sets may nest): skip to its matching ']'.
                var depth = 0, k = i
                repeat {
                    if c[k] == "\\" { k += 2; continue }
                    if c[k] == "[" { depth += 1 } else if c[k] == "]" && k > i + 1 && !(k == i + 2 && c[i + 1] == "^") { depth -= 1 }
                    k += 1
                } while k < c.count && depth > 0
                i = k
                if let q = repetition(at: i) { markQuantifier(); i = q.end }
                continue
            case "(":
                stack.append((false, false))
                guard stack.count <= 256 else { throw refuse("nests groups more than 256 deep") }
                i += 1
                continue
            case ")":
                guard stack.count > 1 else { i += 1; continue }   // unbalanced: the engine reports it
                let g = stack.removeLast()
                i += 1
                if let q = repetition(at: i) {
                    if q.repeats && (g.alt || g.quant) { throw refuse("repeats a group that holds \(g.alt ? "an alternation" : "a quantifier")") }
                    i = q.end
                    markQuantifier()
                }
                // What a group holds, its enclosing groups hold too.
                if g.quant { markQuantifier() }
                if g.alt { stack[stack.count - 1].alt = true }
                continue
            case "|":
                stack[stack.count - 1].alt = true
            default:
                if let q = repetition(at: i + 1), ch != "*", ch != "+", ch != "?", ch != "{" {
                    markQuantifier()
                    i = q.end
                    continue
                }
            }
            i += 1
        }
    }
}
