#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKCore

/// A Jinja subset, enough for the chat templates of SmolLM2/3, Llama 2/3.x, Qwen2/2.5/3, Phi-3.5,
/// Gemma 2 and Mistral (scripts/test_chat_templates.py renders llama.cpp's collection of real
/// templates against transformers), with the environment transformers uses (`trim_blocks=True,
/// lstrip_blocks=True`, `raise_exception`, `strftime_now`, `namespace`, `tojson`):
/// text, `{{ }}`, `{% if/elif/else %}`, `{% for x[, y] in … [if …] %}` with `loop.*` and Jinja's
/// per-iteration scoping, `{% set x = … %}` / `{% set ns.x = … %}`, comments, `-` whitespace
/// control; literals, names, `.attr`, `[key]`, slices with steps, `+ - * / // % ~`, comparisons,
/// `and/or/not`, `in`, tests (`is defined/none/string/…`), `a if c else b`, calls and filters
/// with keyword arguments, and the string, list and dict methods templates use.
public indirect enum JValue: Equatable {
    case string(String), int(Int), double(Double), bool(Bool), none, undefined
    case list([JValue]), dict([String: JValue])
    /// `namespace(...)`: the one mutable value (`{% set ns.x = … %}` inside a loop is seen after it).
    case namespace(JNamespace)

    var truthy: Bool {
        switch self {
        case .string(let s): return !s.isEmpty
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .bool(let b): return b
        case .none, .undefined: return false
        case .list(let l): return !l.isEmpty
        case .dict(let d): return !d.isEmpty
        case .namespace: return true
        }
    }

    var text: String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .bool(let b): return b ? "True" : "False"
        case .none: return "None"
        case .undefined: return ""
        case .list(let l): return "[" + l.map { $0.repr }.joined(separator: ", ") + "]"
        case .dict(let d): return "{" + d.keys.sorted().map { "'\($0)': \(d[$0]!.repr)" }.joined(separator: ", ") + "}"
        case .namespace(let n): return "<Namespace " + JValue.dict(n.values).text + ">"
        }
    }

    var repr: String { if case .string(let s) = self { return "'\(s)'" }; return text }
}

public final class JNamespace: Equatable {
    var values: [String: JValue]
    init(_ values: [String: JValue]) { self.values = values }
    public static func == (a: JNamespace, b: JNamespace) -> Bool { a === b }
}

public struct JinjaError: Error, CustomStringConvertible {
    public let description: String
}

/// What one rendering may cost: a chat template is code from a stranger, so nested loops over the
/// messages, a string doubled in a loop or a list grown without end stop with an error instead of
/// running for hours or exhausting memory.
final class RenderBudget {
    static let maxSteps = 10_000_000
    static let maxBytes = 16 << 20
    static let maxItems = 1 << 20
    var steps = 0

    func step() throws {
        steps += 1
        guard steps <= Self.maxSteps else { throw JinjaError(description: "the template takes more than \(Self.maxSteps) steps") }
    }

    /// Values nest at most this deep (a list in a list …): printing, comparing and freeing them
    /// recurse once per level, so a template that nests in a loop stops with an error instead of
    /// overflowing the stack; a namespace that contains itself is refused the same way.
    static let maxNesting = 64

    /// `v` if it nests at most `maxNesting` deep (each node visited costs a step).
    func nested(_ v: JValue) throws -> JValue {
        func depth(_ x: JValue, _ level: Int) throws -> Int {
            guard level <= Self.maxNesting else { throw JinjaError(description: "values nested more than \(Self.maxNesting) deep") }
            try step()
            switch x {
            case .list(let l): return 1 + (try l.map { try depth($0, level + 1) }.max() ?? 0)
            case .dict(let d): return 1 + (try d.values.map { try depth($0, level + 1) }.max() ?? 0)
            case .namespace(let n): return 1 + (try n.values.values.map { try depth($0, level + 1) }.max() ?? 0)
            default: return 0
            }
        }
        _ = try depth(v, 0)
        return v
    }

    func sized(_ s: String) throws -> String {
        guard s.utf8.count <= Self.maxBytes else { throw JinjaError(description: "the template builds a string of more than \(Self.maxBytes) bytes") }
        return s
    }
}

public final class JinjaTemplate {
    // MARK: lexing template text into text / output / statement nodes

    enum Piece { case text(String), output(String), statement(String) }

    indirect enum Node {
        case text(String)
        case output(Expr)
        case ifChain([(Expr?, [Node])])
        /// `for a[, b] in xs [if cond]`
        case forLoop([String], Expr, Expr?, [Node])
        /// `set name = …` or `set ns.attr = …`
        case set(String, String?, Expr)
    }

    let nodes: [Node]

    /// `{% if %}` / `{% for %}` blocks nested deeper than this are refused (parsing and rendering
    /// recurse once per level).
    static let maxBlockDepth = 64

    public init(_ source: String) throws {
        guard source.utf8.count <= Limits.maxTemplateBytes else {
            throw JinjaError(description: "template of \(source.utf8.count) bytes (at most \(Limits.maxTemplateBytes))")
        }
        let pieces = try Self.lex(source)
        var i = 0
        nodes = try Self.parseBlock(pieces, &i, until: [], depth: 0)
        guard i == pieces.count else { throw JinjaError(description: "unexpected block end in template") }
    }

    static func lex(_ src: String) throws -> [Piece] {
        var out: [Piece] = []
        let s = Array(src.unicodeScalars)
        var i = 0, text = String.UnicodeScalarView()
        var stripNextLeading = false
        func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\n" || c == "\r" }
        func flushText(rstrip: Bool, lstripBlockSpaces: Int) {
            var t = Array(text)
            if stripNextLeading { t = Array(t.drop(while: isBlank)) }
            if rstrip { while let l = t.last, isBlank(l) { t.removeLast() } }
            else if lstripBlockSpaces > 0 { t.removeLast(min(lstripBlockSpaces, t.count)) }
            if !t.isEmpty { out.append(.text(String(String.UnicodeScalarView(t)))) }
            text = String.UnicodeScalarView()
            stripNextLeading = false
        }
        while i < s.count {
            if s[i] == "{", i + 1 < s.count, s[i + 1] == "{" || s[i + 1] == "%" || s[i + 1] == "#" {
                let kind = s[i + 1]
                let close: Unicode.Scalar = kind == "{" ? "}" : kind == "%" ? "%" : "#"
                var j = i + 2
                let leftTrim = j < s.count && s[j] == "-"
                if leftTrim || (j < s.count && s[j] == "+") { j += 1 }
                var end = j
                var quote: Unicode.Scalar? = nil   // inside an expression's string literal ("}}" is text there)
                while end + 1 < s.count {
                    if let q = quote {
                        if s[end] == "\\" { end += 1 } else if s[end] == q { quote = nil }
                    } else if kind != "#" && (s[end] == "'" || s[end] == "\"") {
                        quote = s[end]
                    } else if s[end] == close && s[end + 1] == "}" {
                        break
                    }
                    end += 1
                }
                guard end + 1 < s.count else { throw JinjaError(description: "unclosed tag in template") }
                var innerEnd = end
                let rightTrim = innerEnd > j && s[innerEnd - 1] == "-"
                if rightTrim || (innerEnd > j && s[innerEnd - 1] == "+") { innerEnd -= 1 }
                // lstrip_blocks: spaces and tabs between a line start and a block tag are removed
                var lstrip = 0
                if kind != "{" {
                    var k = i - 1
                    while k >= 0 && (s[k] == " " || s[k] == "\t") { k -= 1 }
                    if k < 0 || s[k] == "\n" { lstrip = i - 1 - k }
                }
                flushText(rstrip: leftTrim, lstripBlockSpaces: lstrip)
                let inner = String(String.UnicodeScalarView(s[j..<innerEnd])).trimmingWhitespace()
                if kind == "{" { out.append(.output(inner)) } else if kind == "%" { out.append(.statement(inner)) }
                i = end + 2
                stripNextLeading = rightTrim
                // trim_blocks: the first newline after a block or comment tag is removed
                if kind != "{" && !rightTrim && i < s.count && s[i] == "\n" { i += 1 }
                continue
            }
            text.append(s[i])
            i += 1
        }
        flushText(rstrip: false, lstripBlockSpaces: 0)
        return out
    }

    static func parseBlock(_ p: [Piece], _ i: inout Int, until: Set<String>, depth: Int) throws -> [Node] {
        guard depth <= maxBlockDepth else { throw JinjaError(description: "template blocks nested more than \(maxBlockDepth) deep") }
        var nodes: [Node] = []
        while i < p.count {
            switch p[i] {
            case .text(let t): nodes.append(.text(t)); i += 1
            case .output(let e): nodes.append(.output(try Self.expr(e))); i += 1
            case .statement(let st):
                let word = String(st.prefix { !$0.isWhitespace })
                if until.contains(word) { return nodes }
                i += 1
                switch word {
                case "if":
                    var chain: [(Expr?, [Node])] = []
                    var cond: Expr? = try Self.expr(String(st.dropFirst(2)))
                    while true {
                        let body = try parseBlock(p, &i, until: ["elif", "else", "endif"], depth: depth + 1)
                        chain.append((cond, body))
                        guard i < p.count, case .statement(let s2) = p[i] else { throw JinjaError(description: "missing endif") }
                        i += 1
                        if s2.hasPrefix("elif") { cond = try Self.expr(String(s2.dropFirst(4))) }
                        else if s2.hasPrefix("else") { cond = nil; chain.append((nil, try parseBlock(p, &i, until: ["endif"], depth: depth + 1))); i += 1; break }
                        else { break }
                    }
                    nodes.append(.ifChain(chain))
                case "for":
                    let rest = st.dropFirst(3)
                    guard let inRange = rest.firstRange(of: " in ") else { throw JinjaError(description: "bad for: \(st)") }
                    let names = rest[..<inRange.lowerBound].split(separator: ",").map { $0.trimmingWhitespace() }
                    guard !names.isEmpty, names.allSatisfy(Self.isName) else { throw JinjaError(description: "bad for target: \(st.prefix(60))") }
                    var p2 = try ExprParser(String(rest[inRange.upperBound...]))
                    let (iter, cond) = try p2.parseForIterable()
                    let body = try parseBlock(p, &i, until: ["endfor"], depth: depth + 1)
                    i += 1
                    nodes.append(.forLoop(names, iter, cond, body))
                case "set":
                    let rest = st.dropFirst(3)
                    guard let eq = rest.firstIndex(of: "=") else { throw JinjaError(description: "bad set: \(st)") }
                    let target = rest[..<eq].trimmingWhitespace().split(separator: ".", maxSplits: 1).map(String.init)
                    guard !target.isEmpty, target.allSatisfy(Self.isName) else { throw JinjaError(description: "bad set target: \(st.prefix(60))") }
                    nodes.append(.set(target[0], target.count > 1 ? target[1] : nil, try Self.expr(String(rest[rest.index(after: eq)...]))))
                default:
                    throw JinjaError(description: "unsupported template statement: \(word)")
                }
            }
        }
        if !until.isEmpty { throw JinjaError(description: "template block not closed (expected \(until.sorted().joined(separator: "/")))") }
        return nodes
    }

    static func isName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, f.properties.isAlphabetic || f == "_" else { return false }
        return s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0 == "_" || ("0"..."9").contains($0) }
    }

    static func expr(_ src: String) throws -> Expr {
        var p = try ExprParser(src)
        return try p.parseAll()
    }

    // MARK: rendering

    public func render(_ context: [String: JValue]) throws -> String {
        var scope = context
        var out = ""
        try run(nodes, &scope, &out, RenderBudget())
        return out
    }

    func run(_ nodes: [Node], _ scope: inout [String: JValue], _ out: inout String, _ budget: RenderBudget) throws {
        for n in nodes {
            try budget.step()
            _ = try budget.sized(out)
            switch n {
            case .text(let t): out += t
            case .output(let e): out += try e.eval(scope, budget).text
            case .set(let name, nil, let e): scope[name] = try e.eval(scope, budget)
            case .set(let name, let attr?, let e):
                guard case .namespace(let ns) = scope[name] ?? .undefined else { throw JinjaError(description: "set \(name).\(attr): \(name) is not a namespace") }
                let old = ns.values[attr]
                ns.values[attr] = try e.eval(scope, budget)
                do { _ = try budget.nested(.namespace(ns)) } catch {
                    ns.values[attr] = old   // (a cycle would outlive the render)
                    throw error
                }
            case .ifChain(let chain):
                for (cond, body) in chain where try cond?.eval(scope, budget).truthy ?? true {
                    try run(body, &scope, &out, budget)
                    break
                }
            case .forLoop(let names, let iter, let cond, let body):
                // Jinja's scoping: each iteration starts from the enclosing scope (a `set` in the
                // body lasts one iteration and is gone after the loop; namespaces are shared).
                var all: [JValue]
                switch try iter.eval(scope, budget) {
                case .list(let l): all = l
                case .dict(let d): all = d.keys.sorted().map { .string($0) }
                case .string(let str): all = str.map { .string(String($0)) }
                default: throw JinjaError(description: "for over a non-list")
                }
                func bind(_ item: JValue, into sc: inout [String: JValue]) throws {
                    if names.count == 1 { sc[names[0]] = item; return }
                    guard case .list(let parts) = item, parts.count == names.count else {
                        throw JinjaError(description: "cannot unpack \(item.repr.prefix(40)) into \(names.count) names")
                    }
                    for (n, v) in zip(names, parts) { sc[n] = v }
                }
                var items: [JValue] = []
                for item in all {
                    guard let cond else { items.append(item); continue }
                    var sc = scope
                    try bind(item, into: &sc)
                    if try cond.eval(sc, budget).truthy { items.append(item) }
                }
                for (k, item) in items.enumerated() {
                    var inner = scope
                    try bind(item, into: &inner)
                    inner["loop"] = .dict(["index0": .int(k), "index": .int(k + 1), "first": .bool(k == 0),
                                           "last": .bool(k == items.count - 1), "length": .int(items.count),
                                           "revindex": .int(items.count - k), "revindex0": .int(items.count - k - 1),
                                           "previtem": k > 0 ? items[k - 1] : .undefined,
                                           "nextitem": k + 1 < items.count ? items[k + 1] : .undefined])
                    try run(body, &inner, &out, budget)
                }
            }
        }
    }
}
