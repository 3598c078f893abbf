#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

indirect enum Expr {
    case literal(JValue)
    case name(String)
    case list([Expr])
    case attr(Expr, String)
    case item(Expr, Expr)
    case slice(Expr, Expr?, Expr?)
    case call(Expr, [Expr])
    case filter(Expr, String, [Expr])
    case unary(String, Expr)
    case binary(String, Expr, Expr)
    case test(Expr, String, Bool)          // `is [not] name`
    case conditional(Expr, Expr, Expr)     // a if c else b

    func eval(_ s: [String: JValue], _ budget: RenderBudget) throws -> JValue {
        try budget.step()
        switch self {
        case .literal(let v): return v
        case .name(let n): return s[n] ?? .undefined
        case .list(let l): return .list(try l.map { try $0.eval(s, budget) })
        case .attr(let e, let a):
            let v = try e.eval(s, budget)
            if case .dict(let d) = v { return d[a] ?? .undefined }
            return .undefined
        case .item(let e, let k):
            let v = try e.eval(s, budget), key = try k.eval(s, budget)
            switch (v, key) {
            case (.dict(let d), .string(let k)): return d[k] ?? .undefined
            case (.list(let l), .int(let i)):
                let j = i < 0 ? l.count + i : i
                return j >= 0 && j < l.count ? l[j] : .undefined
            case (.string(let str), .int(let i)):
                let c = Array(str)
                let j = i < 0 ? c.count + i : i
                return j >= 0 && j < c.count ? .string(String(c[j])) : .undefined
            default: return .undefined
            }
        case .slice(let e, let a, let b):
            let v = try e.eval(s, budget)
            func bound(_ x: Expr?, _ n: Int, _ def: Int) throws -> Int {
                guard let x, case .int(let i) = try x.eval(s, budget) else { return def }
                return max(0, min(n, i < 0 ? n + i : i))
            }
            switch v {
            case .list(let l):
                let lo = try bound(a, l.count, 0), hi = try bound(b, l.count, l.count)
                return .list(lo < hi ? Array(l[lo..<hi]) : [])
            case .string(let str):
                let c = Array(str)
                let lo = try bound(a, c.count, 0), hi = try bound(b, c.count, c.count)
                return .string(lo < hi ? String(c[lo..<hi]) : "")
            default: return .undefined
            }
        case .call(let f, let args):
            let a = try args.map { try $0.eval(s, budget) }
            if case .name("raise_exception") = f { throw JinjaError(description: a.first?.text ?? "template error") }
            if case .attr(let target, let method) = f { return try Self.method(try target.eval(s, budget), method, a) }
            throw JinjaError(description: "unsupported call in template")
        case .filter(let e, let name, let args):
            return try Self.method(try e.eval(s, budget), name == "trim" ? "strip" : name, try args.map { try $0.eval(s, budget) }, filter: true)
        case .unary(let op, let e):
            let v = try e.eval(s, budget)
            if op == "not" { return .bool(!v.truthy) }
            if case .int(let i) = v { return .int(try Self.checked((0).subtractingReportingOverflow(i), "-")) }
            if case .double(let d) = v { return .double(-d) }
            throw JinjaError(description: "bad operand for unary \(op)")
        case .test(let e, let name, let negate):
            let v = try e.eval(s, budget)
            var r: Bool
            switch name {
            case "defined": r = v != .undefined
            case "undefined": r = v == .undefined
            case "none": r = v == .none
            case "string": if case .string = v { r = true } else { r = false }
            case "mapping": if case .dict = v { r = true } else { r = false }
            case "iterable", "sequence": if case .list = v { r = true } else if case .string = v { r = true } else { r = false }
            case "number": if case .int = v { r = true } else if case .double = v { r = true } else { r = false }
            case "true": r = v == .bool(true)
            case "false": r = v == .bool(false)
            default: throw JinjaError(description: "unsupported test \(name)")
            }
            return .bool(negate ? !r : r)
        case .conditional(let a, let c, let b):
            return try c.eval(s, budget).truthy ? a.eval(s, budget) : b.eval(s, budget)
        case .binary(let op, let l, let r):
            if op == "and" { let a = try l.eval(s, budget); return a.truthy ? try r.eval(s, budget) : a }
            if op == "or" { let a = try l.eval(s, budget); return a.truthy ? a : try r.eval(s, budget) }
            let a = try l.eval(s, budget), b = try r.eval(s, budget)
            switch op {
            case "==": return .bool(Self.equal(a, b))
            case "!=": return .bool(!Self.equal(a, b))
            case "~": return .string(try budget.sized(a.text + b.text))
            case "in", "not in":
                var hit = false
                switch b {
                case .list(let items): hit = items.contains { Self.equal($0, a) }
                case .string(let str): hit = str.contains(a.text)
                case .dict(let d): hit = d[a.text] != nil
                default: hit = false
                }
                return .bool(op == "in" ? hit : !hit)
            default: break
            }
            switch (a, b) {
            case (.string(let x), .string(let y)) where op == "+": return .string(try budget.sized(x + y))
            case (.list(let x), .list(let y)) where op == "+":
                guard x.count + y.count <= RenderBudget.maxItems else { throw JinjaError(description: "a list of more than \(RenderBudget.maxItems) items") }
                return .list(x + y)
            case (.string(let x), .string(let y)):
                switch op { case "<": return .bool(x < y); case ">": return .bool(x > y); case "<=": return .bool(x <= y); case ">=": return .bool(x >= y); default: break }
            case (.int(let x), .int(let y)):
                switch op {
                case "+": return .int(try Self.checked(x.addingReportingOverflow(y), op))
                case "-": return .int(try Self.checked(x.subtractingReportingOverflow(y), op))
                case "*": return .int(try Self.checked(x.multipliedReportingOverflow(by: y), op))
                case "/": return .double(Double(x) / Double(y))
                case "%":
                    guard y != 0 else { throw JinjaError(description: "modulo by zero") }
                    // Python's modulo takes the sign of the divisor.
                    let r = try Self.checked(x.remainderReportingOverflow(dividingBy: y), op)
                    return .int(r != 0 && (r < 0) != (y < 0) ? r + y : r)
                case "<": return .bool(x < y); case ">": return .bool(x > y); case "<=": return .bool(x <= y); case ">=": return .bool(x >= y)
                default: break
                }
            default: break
            }
            throw JinjaError(description: "unsupported operands for \(op): \(a.repr), \(b.repr)")
        }
    }

    /// Python's integers do not overflow; the template's 64-bit ones refuse to instead of trapping.
    static func checked(_ r: (partialValue: Int, overflow: Bool), _ op: String) throws -> Int {
        guard !r.overflow else { throw JinjaError(description: "integer overflow in \(op)") }
        return r.partialValue
    }

    static func equal(_ a: JValue, _ b: JValue) -> Bool {
        switch (a, b) {
        case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y
        case (.undefined, .none), (.none, .undefined): return false
        default: return a == b
        }
    }

    static func method(_ v: JValue, _ name: String, _ args: [JValue], filter: Bool = false) throws -> JValue {
        switch (v, name) {
        case (.string(let s), "strip"):
            if let c = args.first?.text { return .string(String(s.drop { c.contains($0) }.reversed().drop { c.contains($0) }.reversed())) }
            return .string(s.trimmingWhitespace())
        case (.string(let s), "lstrip"): return .string(String(s.drop { $0.isWhitespace }))
        case (.string(let s), "rstrip"): return .string(String(s.reversed().drop { $0.isWhitespace }.reversed()))
        case (.string(let s), "upper"): return .string(s.uppercased())
        case (.string(let s), "lower"): return .string(s.lowercased())
        case (.string(let s), "title"): return .string(s.capitalized)
        case (.string(let s), "startswith"): return .bool(s.hasPrefix(args.first?.text ?? ""))
        case (.string(let s), "endswith"): return .bool(s.hasSuffix(args.first?.text ?? ""))
        // `|length` and `|count` of a string are Python's len (code points, not Swift's grapheme
        // clusters); `.count(sub)` is Python's str.count (non-overlapping; "" counts len + 1).
        case (.string(let s), "length") where filter, (.string(let s), "count") where filter:
            return .int(s.unicodeScalars.count)
        case (.string(let s), "count"):
            let sub = args.first?.text ?? ""
            return .int(sub.isEmpty ? s.unicodeScalars.count + 1 : s.components(separatedBy: sub).count - 1)
        case (.list(let l), "length"), (.list(let l), "count"): return .int(l.count)
        case (.dict(let d), "length"): return .int(d.count)
        case (_, "string"): return .string(v.text)
        case (.dict(let d), "items"): return .list(d.keys.sorted().map { .list([.string($0), d[$0]!]) })
        case (.dict(let d), "get"): return d[args.first?.text ?? ""] ?? (args.count > 1 ? args[1] : .none)
        default: throw JinjaError(description: "unsupported \(filter ? "filter" : "method") \(name) on \(v.repr.prefix(40))")
        }
    }
}

/// Recursive-descent parser for template expressions (Jinja precedence).
struct ExprParser {
    enum Tok: Equatable { case name(String), str(String), num(String), op(String), end }
    var toks: [Tok] = []
    var i = 0
    var depth = 0
    /// Tokens in one expression, and nesting of parentheses, brackets, calls and unary operators:
    /// far above any real chat template, low enough that evaluating (and freeing) the tree never
    /// recurses deeply.
    static let maxTokens = 2_000
    static let maxDepth = 64

    mutating func nest<R>(_ body: (inout ExprParser) throws -> R) throws -> R {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw JinjaError(description: "template expression nested more than \(Self.maxDepth) deep") }
        return try body(&self)
    }

    init(_ src: String) throws {
        let c = Array(src.unicodeScalars)
        var k = 0
        while k < c.count {
            let ch = c[k]
            if ch == " " || ch == "\t" || ch == "\n" { k += 1; continue }
            if ch == "'" || ch == "\"" {
                var s = String.UnicodeScalarView()
                k += 1
                while k < c.count && c[k] != ch {
                    if c[k] == "\\", k + 1 < c.count {
                        k += 1
                        switch c[k] { case "n": s.append("\n"); case "t": s.append("\t"); case "r": s.append("\r"); default: s.append(c[k]) }
                    } else { s.append(c[k]) }
                    k += 1
                }
                guard k < c.count else { throw JinjaError(description: "unterminated string in template") }
                k += 1
                toks.append(.str(String(s)))
            } else if ch.properties.isAlphabetic || ch == "_" {
                var s = ""
                while k < c.count && (c[k].properties.isAlphabetic || c[k] == "_" || ("0"..."9").contains(c[k])) { s.unicodeScalars.append(c[k]); k += 1 }
                toks.append(.name(s))
            } else if ("0"..."9").contains(ch) {
                var s = ""
                while k < c.count && (("0"..."9").contains(c[k]) || c[k] == ".") { s.unicodeScalars.append(c[k]); k += 1 }
                toks.append(.num(s))
            } else {
                let two = k + 1 < c.count ? String(String.UnicodeScalarView([ch, c[k + 1]])) : ""
                if ["==", "!=", "<=", ">=", "//", "**"].contains(two) { toks.append(.op(two)); k += 2 }
                else { toks.append(.op(String(ch))); k += 1 }
            }
        }
        toks.append(.end)
        guard toks.count <= Self.maxTokens else { throw JinjaError(description: "template expression of more than \(Self.maxTokens) tokens") }
    }

    var peek: Tok { toks[i] }
    mutating func next() -> Tok { defer { i += 1 }; return toks[i] }
    mutating func accept(_ t: Tok) -> Bool { if peek == t { i += 1; return true }; return false }
    mutating func expect(_ t: Tok) throws { guard accept(t) else { throw JinjaError(description: "expected \(t) in template expression") } }

    mutating func parseAll() throws -> Expr {
        let e = try parseConditional()
        guard peek == .end else { throw JinjaError(description: "unexpected \(peek) in template expression") }
        return e
    }

    mutating func parseConditional() throws -> Expr {
        try nest { try $0.parseConditionalBody() }
    }
    mutating func parseConditionalBody() throws -> Expr {
        let a = try parseOr()
        if accept(.name("if")) {
            let c = try parseOr()
            let b: Expr = accept(.name("else")) ? try parseConditional() : .literal(.undefined)
            return .conditional(a, c, b)
        }
        return a
    }
    mutating func parseOr() throws -> Expr {
        var l = try parseAnd()
        while accept(.name("or")) { l = .binary("or", l, try parseAnd()) }
        return l
    }
    mutating func parseAnd() throws -> Expr {
        var l = try parseNot()
        while accept(.name("and")) { l = .binary("and", l, try parseNot()) }
        return l
    }
    mutating func parseNot() throws -> Expr {
        if accept(.name("not")) { return .unary("not", try nest { try $0.parseNot() }) }
        return try parseCompare()
    }
    mutating func parseCompare() throws -> Expr {
        var l = try parseConcat()
        while true {
            if case .op(let o) = peek, ["==", "!=", "<", ">", "<=", ">="].contains(o) { i += 1; l = .binary(o, l, try parseConcat()); continue }
            if accept(.name("in")) { l = .binary("in", l, try parseConcat()); continue }
            if peek == .name("not"), toks[i + 1] == .name("in") { i += 2; l = .binary("not in", l, try parseConcat()); continue }
            if accept(.name("is")) {
                let neg = accept(.name("not"))
                guard case .name(let t) = next() else { throw JinjaError(description: "expected a test name after is") }
                l = .test(l, t, neg)
                continue
            }
            return l
        }
    }
    mutating func parseConcat() throws -> Expr {
        var l = try parseAdd()
        while accept(.op("~")) { l = .binary("~", l, try parseAdd()) }
        return l
    }
    mutating func parseAdd() throws -> Expr {
        var l = try parseMul()
        while case .op(let o) = peek, o == "+" || o == "-" { i += 1; l = .binary(o, l, try parseMul()) }
        return l
    }
    mutating func parseMul() throws -> Expr {
        var l = try parseUnary()
        while case .op(let o) = peek, o == "*" || o == "/" || o == "%" { i += 1; l = .binary(o, l, try parseUnary()) }
        return l
    }
    mutating func parseUnary() throws -> Expr {
        if accept(.op("-")) { return .unary("-", try nest { try $0.parseUnary() }) }
        return try parseFilter()
    }
    mutating func parseFilter() throws -> Expr {
        var e = try parsePostfix()
        while accept(.op("|")) {
            guard case .name(let f) = next() else { throw JinjaError(description: "expected a filter name") }
            var args: [Expr] = []
            if accept(.op("(")) { args = try parseArgs() }
            e = .filter(e, f, args)
        }
        return e
    }
    mutating func parseArgs() throws -> [Expr] {
        var args: [Expr] = []
        if accept(.op(")")) { return args }
        repeat { args.append(try parseConditional()) } while accept(.op(","))
        try expect(.op(")"))
        return args
    }
    mutating func parsePostfix() throws -> Expr {
        var e = try parsePrimary()
        while true {
            if accept(.op(".")) {
                guard case .name(let a) = next() else { throw JinjaError(description: "expected an attribute name") }
                e = .attr(e, a)
            } else if accept(.op("[")) {
                var lo: Expr?, hi: Expr?
                if !accept(.op(":")) {
                    lo = try parseConditional()
                    if !accept(.op(":")) { try expect(.op("]")); e = .item(e, lo!); continue }
                }
                if peek != .op("]") { hi = try parseConditional() }
                try expect(.op("]"))
                e = .slice(e, lo, hi)
            } else if accept(.op("(")) {
                e = .call(e, try parseArgs())
            } else { return e }
        }
    }
    mutating func parsePrimary() throws -> Expr {
        switch next() {
        case .str(let s):
            var v = s
            while case .str(let more) = peek { v += more; i += 1 }   // adjacent literals concatenate
            return .literal(.string(v))
        case .num(let n): return .literal(n.contains(".") ? .double(Double(n) ?? 0) : .int(Int(n) ?? 0))
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .op("("):
            let e = try parseConditional()
            try expect(.op(")"))
            return e
        case .op("["):
            var items: [Expr] = []
            if !accept(.op("]")) {
                repeat { items.append(try parseConditional()) } while accept(.op(","))
                try expect(.op("]"))
            }
            return .list(items)
        case let t:
            throw JinjaError(description: "unexpected \(t) in template expression")
        }
    }
}
