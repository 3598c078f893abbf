#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SKCore
#if canImport(Glibc)
import Glibc
#endif

indirect enum Expr {
    case literal(JValue)
    case name(String)
    case list([Expr])
    case attr(Expr, String)
    case item(Expr, Expr)
    case dictLiteral([(Expr, Expr)])
    case slice(Expr, Expr?, Expr?, Expr?)  // e[a:b:step]
    case call(Expr, [Expr], [(String, Expr)])
    case filter(Expr, String, [Expr], [(String, Expr)])
    case unary(String, Expr)
    case binary(String, Expr, Expr)
    case test(Expr, String, Bool, [Expr])  // `is [not] name [arg]`
    case conditional(Expr, Expr, Expr)     // a if c else b

    func eval(_ s: [String: JValue], _ budget: RenderBudget) throws -> JValue {
        try budget.step()
        switch self {
        case .literal(let v): return v
        case .name(let n):
            if let v = s[n] { return v }
            // transformers' globals exist (`strftime_now is defined` holds)
            return Self.globals.contains(n) ? .string("<built-in function \(n)>") : .undefined
        case .list(let l): return try budget.nested(.list(try l.map { try $0.eval(s, budget) }))
        case .dictLiteral(let pairs):
            var d: [String: JValue] = [:]
            for (k, v) in pairs { d[try k.eval(s, budget).text] = try v.eval(s, budget) }
            return try budget.nested(.dict(d))
        case .attr(let e, let a):
            let v = try e.eval(s, budget)
            if case .dict(let d) = v { return d[a] ?? .undefined }
            if case .namespace(let n) = v { return n.values[a] ?? .undefined }
            return .undefined
        case .item(let e, let k):
            let v = try e.eval(s, budget), key = try k.eval(s, budget)
            switch (v, key) {
            case (.dict(let d), .string(let k)): return d[k] ?? .undefined
            case (.namespace(let n), .string(let k)): return n.values[k] ?? .undefined
            case (.list(let l), .int(let i)):
                let j = i < 0 ? l.count + i : i
                return j >= 0 && j < l.count ? l[j] : .undefined
            case (.string(let str), .int(let i)):
                let c = Array(str)
                let j = i < 0 ? c.count + i : i
                return j >= 0 && j < c.count ? .string(String(c[j])) : .undefined
            default: return .undefined
            }
        case .slice(let e, let a, let b, let st):
            let v = try e.eval(s, budget)
            var step = 1
            if let st, case .int(let k) = try st.eval(s, budget) { step = k }
            guard step != 0 else { throw JinjaError(description: "slice step cannot be zero") }
            // Python's slice.indices
            func indices(_ n: Int) throws -> [Int] {
                func bound(_ x: Expr?, _ def: Int) throws -> Int {
                    guard let x, case .int(let i) = try x.eval(s, budget) else { return def }
                    let j = i < 0 ? i + n : i
                    return step > 0 ? max(0, min(n, j)) : max(-1, min(n - 1, j))
                }
                let lo = try bound(a, step > 0 ? 0 : n - 1), hi = try bound(b, step > 0 ? n : -1)
                return Array(stride(from: lo, to: hi, by: step))
            }
            switch v {
            case .list(let l): return .list(try indices(l.count).map { l[$0] })
            case .string(let str):
                let c = Array(str)
                return .string(String(try indices(c.count).map { c[$0] }))
            default: return .undefined
            }
        case .call(let f, let args, let kwargs):
            let a = try args.map { try $0.eval(s, budget) }
            let kw = try kwargs.map { ($0.0, try $0.1.eval(s, budget)) }
            if case .name(let g) = f, s[g] == nil { return try budget.nested(try Self.global(g, a, kw)) }
            if case .attr(let target, let method) = f { return try Self.method(try target.eval(s, budget), method, a) }
            throw JinjaError(description: "unsupported call in template")
        case .filter(let e, let name, let args, let kwargs):
            let v = try e.eval(s, budget), a = try args.map { try $0.eval(s, budget) }
            let kw = Dictionary(try kwargs.map { ($0.0, try $0.1.eval(s, budget)) }, uniquingKeysWith: { $1 })
            return try Self.filter(v, name, a, kw, budget)
        case .unary(let op, let e):
            let v = try e.eval(s, budget)
            if op == "not" { return .bool(!v.truthy) }
            if case .int(let i) = v { return .int(try Self.checked((0).subtractingReportingOverflow(i), "-")) }
            if case .double(let d) = v { return .double(-d) }
            throw JinjaError(description: "bad operand for unary \(op)")
        case .test(let e, let name, let negate, let args):
            let v = try e.eval(s, budget)
            return .bool(try Self.test(v, name, try args.map { try $0.eval(s, budget) }) != negate)
        case .conditional(let a, let c, let b):
            return try c.eval(s, budget).truthy ? a.eval(s, budget) : b.eval(s, budget)
        case .binary(let op, let l, let r):
            return try Self.binary(op, l, r, s, budget)
        }
    }

    /// Jinja's tests (`x is name`, `is name(arg)`).
    static func test(_ v: JValue, _ name: String, _ args: [JValue]) throws -> Bool {
        let r: Bool
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
            case "boolean": if case .bool = v { r = true } else { r = false }
            case "integer": if case .int = v { r = true } else { r = false }
            case "float": if case .double = v { r = true } else { r = false }
            case "equalto", "eq", "==", "sameas": r = equal(v, args.first ?? .undefined)
            case "ne", "!=": r = !equal(v, args.first ?? .undefined)
            case "in": r = try binaryValue("in", v, args.first ?? .undefined, RenderBudget()) == .bool(true)
            case "odd", "even":
                guard case .int(let i) = v else { throw JinjaError(description: "\(name) of a non-integer") }
                r = (i % 2 != 0) == (name == "odd")
            case "divisibleby":
                guard case .int(let i) = v, case .int(let d)? = args.first, d != 0 else { throw JinjaError(description: "bad divisibleby") }
                r = i % d == 0
            case "lower": r = v.text == v.text.lowercased()
            case "upper": r = v.text == v.text.uppercased()
            default: throw JinjaError(description: "unsupported test \(name)")
        }
        return r
    }

    static func binary(_ op: String, _ l: Expr, _ r: Expr, _ s: [String: JValue], _ budget: RenderBudget) throws -> JValue {
            if op == "and" { let a = try l.eval(s, budget); return a.truthy ? try r.eval(s, budget) : a }
            if op == "or" { let a = try l.eval(s, budget); return a.truthy ? a : try r.eval(s, budget) }
            return try binaryValue(op, try l.eval(s, budget), try r.eval(s, budget), budget)
    }

    static func binaryValue(_ op: String, _ a: JValue, _ b: JValue, _ budget: RenderBudget) throws -> JValue {
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
                case "//":
                    guard y != 0 else { throw JinjaError(description: "division by zero") }
                    let q = x / y
                    return .int(q * y != x && (x < 0) != (y < 0) ? q - 1 : q)
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
        case (.string(let s), "lstrip"):
            let c = args.first.map { Set($0.text.unicodeScalars) }
            return .string(String(String.UnicodeScalarView(s.unicodeScalars.drop { c?.contains($0) ?? $0.properties.isWhitespace })))
        case (.string(let s), "rstrip"):
            let c = args.first.map { Set($0.text.unicodeScalars) }
            return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed().drop { c?.contains($0) ?? $0.properties.isWhitespace }.reversed())))
        case (.string(let s), "split"):
            // Python's str.split: on a separator, or on runs of whitespace without one
            if let sep = args.first, sep != .none {
                guard !sep.text.isEmpty else { throw JinjaError(description: "split: empty separator") }
                return .list(s.components(separatedBy: sep.text).map { .string($0) })
            }
            return .list(s.split(whereSeparator: { $0.isWhitespace }).map { .string(String($0)) })
        case (.string(let s), "replace"):
            guard args.count >= 2 else { throw JinjaError(description: "replace needs two arguments") }
            guard !args[0].text.isEmpty else { throw JinjaError(description: "replace of an empty string") }
            return .string(try RenderBudget().sized(s.replacing(args[0].text, with: args[1].text)))
        case (.string(let s), "capitalize"): return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case (.string(let sep), "join"):
            guard case .list(let l)? = args.first else { throw JinjaError(description: "join of a non-list") }
            return .string(l.map(\.text).joined(separator: sep))
        case (.dict(let d), "keys"): return .list(d.keys.sorted().map { .string($0) })
        case (.dict(let d), "values"): return .list(d.keys.sorted().map { d[$0]! })
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

extension Expr {
    static let globals: Set<String> = ["raise_exception", "namespace", "dict", "range", "strftime_now"]

    /// The functions transformers' environment defines.
    static func global(_ name: String, _ a: [JValue], _ kw: [(String, JValue)]) throws -> JValue {
        switch name {
        case "raise_exception": throw JinjaError(description: a.first?.text ?? "template error")
        case "namespace":
            var d: [String: JValue] = [:]
            if case .dict(let init0)? = a.first { d = init0 }
            for (k, v) in kw { d[k] = v }
            return .namespace(JNamespace(d))
        case "dict":
            return .dict(Dictionary(kw, uniquingKeysWith: { $1 }))
        case "range":
            let ints = try a.map { v -> Int in guard case .int(let i) = v else { throw JinjaError(description: "range of a non-integer") }; return i }
            let (lo, hi, st) = ints.count == 1 ? (0, ints[0], 1) : ints.count == 2 ? (ints[0], ints[1], 1) : ints.count == 3 ? (ints[0], ints[1], ints[2]) : (0, 0, 0)
            guard st != 0 else { throw JinjaError(description: "range needs 1 to 3 integers, step not 0") }
            let r = Array(stride(from: lo, to: hi, by: st).prefix(RenderBudget.maxItems + 1))
            guard r.count <= RenderBudget.maxItems else { throw JinjaError(description: "a range of more than \(RenderBudget.maxItems) items") }
            return .list(r.map { .int($0) })
        case "strftime_now":
            // transformers: datetime.now().strftime(format)
            var t = time(nil)
            var tmv = tm()
            localtime_r(&t, &tmv)
            var buf = [Int8](repeating: 0, count: 256)
            let n = strftime(&buf, buf.count, a.first?.text ?? "", &tmv)
            return .string(String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        default: throw JinjaError(description: "unsupported function \(name) in template")
        }
    }

    /// Filters (`x | name(args, key=value)`); anything else is a method of the value.
    static func filter(_ v: JValue, _ name: String, _ a: [JValue], _ kw: [String: JValue], _ budget: RenderBudget) throws -> JValue {
        func list(_ v: JValue) throws -> [JValue] {
            switch v {
            case .list(let l): return l
            case .string(let s): return s.map { .string(String($0)) }
            case .dict(let d): return d.keys.sorted().map { .string($0) }
            default: throw JinjaError(description: "\(name) of \(v.repr.prefix(40)), not a sequence")
            }
        }
        func attribute(_ item: JValue, _ path: String) -> JValue {
            var cur = item
            for part in path.split(separator: ".") {
                switch cur {
                case .dict(let d): cur = d[String(part)] ?? .undefined
                case .namespace(let n): cur = n.values[String(part)] ?? .undefined
                case .list(let l): cur = Int(part).flatMap { $0 >= 0 && $0 < l.count ? l[$0] : nil } ?? .undefined
                default: return .undefined
                }
            }
            return cur
        }
        switch name {
        case "trim": return try method(v, "strip", a, filter: true)
        case "join":
            return .string(try budget.sized(try list(v).map(\.text).joined(separator: a.first?.text ?? kw["d"]?.text ?? "")))
        case "first": return try list(v).first ?? .undefined
        case "last": return try list(v).last ?? .undefined
        case "list": return .list(try list(v))
        case "reverse":
            if case .string(let s) = v { return .string(String(s.reversed())) }
            return .list(try list(v).reversed())
        case "unique":
            var out: [JValue] = []
            for x in try list(v) where !out.contains(where: { equal($0, x) }) { out.append(x) }
            return .list(out)
        case "default", "d":
            let fallback = a.first ?? kw["default_value"] ?? .string("")
            let boolean = (a.count > 1 ? a[1] : kw["boolean"] ?? .bool(false)).truthy
            return v == .undefined || (boolean && !v.truthy) ? fallback : v
        case "select", "reject":
            let keep = name == "select"
            return .list(try list(v).filter { x in
                guard let t = a.first else { return x.truthy == keep }
                return try test(x, t.text, Array(a.dropFirst())) == keep
            })
        case "selectattr", "rejectattr":
            guard let attr = a.first?.text else { throw JinjaError(description: "\(name) needs an attribute") }
            let keep = name == "selectattr"
            return .list(try list(v).filter { x in
                let y = attribute(x, attr)
                guard a.count > 1 else { return y.truthy == keep }
                return try test(y, a[1].text, Array(a.dropFirst(2))) == keep
            })
        case "map":
            if let attr = kw["attribute"]?.text {
                return .list(try list(v).map { let y = attribute($0, attr); return y == .undefined ? kw["default"] ?? .undefined : y })
            }
            guard let f = a.first?.text else { throw JinjaError(description: "map needs a filter or attribute=") }
            return .list(try list(v).map { try filter($0, f, Array(a.dropFirst()), [:], budget) })
        case "tojson":
            let indent: Int?
            if case .int(let n)? = kw["indent"] ?? a.first { indent = n } else { indent = nil }
            return .string(try budget.sized(try JSONText.dump(v, indent: indent, level: 0)))
        case "int":
            switch v {
            case .int: return v
            case .double(let d): return .int(d.isFinite && abs(d) < 9e18 ? Int(d) : 0)
            case .bool(let b): return .int(b ? 1 : 0)
            case .string(let s): return .int(Int(s.trimmingWhitespace()) ?? 0)
            default: return .int(0)
            }
        case "float":
            switch v {
            case .int(let i): return .double(Double(i))
            case .double: return v
            case .string(let s): return .double(Double(s.trimmingWhitespace()) ?? 0)
            default: return .double(0)
            }
        case "abs":
            if case .int(let i) = v { return .int(try checked((0).subtractingReportingOverflow(i < 0 ? i : -i), "abs")) }
            if case .double(let d) = v { return .double(Swift.abs(d)) }
            throw JinjaError(description: "abs of a non-number")
        case "items":
            return try budget.nested(try method(v, "items", a))
        default:
            return try method(v, name, a, filter: true)
        }
    }
}

/// `tojson` as transformers defines it: json.dumps(x, ensure_ascii=False, indent=indent) (objects'
/// keys sorted here: SinkKit's dicts do not keep insertion order).
enum JSONText {
    static func dump(_ v: JValue, indent: Int?, level: Int) throws -> String {
        guard level < 64 else { throw JinjaError(description: "tojson nested more than 64 deep") }
        let nl = indent.map { "\n" + String(repeating: " ", count: $0 * (level + 1)) }
        let close = indent.map { "\n" + String(repeating: " ", count: $0 * level) } ?? ""
        let sep = indent == nil ? ", " : ","
        switch v {
        case .string(let s): return quote(s)
        case .int(let i): return String(i)
        case .double(let d): return d.isFinite ? String(d) : (d.isNaN ? "NaN" : d > 0 ? "Infinity" : "-Infinity")
        case .bool(let b): return b ? "true" : "false"
        case .none, .undefined: return "null"
        case .list(let l):
            if l.isEmpty { return "[]" }
            return "[" + (nl ?? "") + (try l.map { try dump($0, indent: indent, level: level + 1) }).joined(separator: sep + (nl ?? "")) + close + "]"
        case .dict(let d):
            if d.isEmpty { return "{}" }
            return "{" + (nl ?? "") + (try d.keys.sorted().map { quote($0) + ": " + (try dump(d[$0]!, indent: indent, level: level + 1)) }).joined(separator: sep + (nl ?? "")) + close + "}"
        case .namespace(let n): return try dump(.dict(n.values), indent: indent, level: level)
        }
    }

    /// json.dumps's string form (ensure_ascii=False): DEL is left as it is.
    static func quote(_ s: String) -> String { JSONWriter.quoted(s, escapingDelete: false) }
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
                var args: [Expr] = []
                if accept(.op("(")) {
                    args = try parseArgs().0
                } else {
                    // one argument without parentheses: a literal (`is equalto 'x'`, `is in [1, 2]`)
                    switch peek {
                    case .str, .num, .op("["): args = [try parsePrimary()]
                    case .name(let n) where ["true", "false", "none", "True", "False", "None"].contains(n): args = [try parsePrimary()]
                    default: break
                    }
                }
                l = .test(l, t, neg, args)
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
        while case .op(let o) = peek, o == "*" || o == "/" || o == "//" || o == "%" { i += 1; l = .binary(o, l, try parseUnary()) }
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
            var args: ([Expr], [(String, Expr)]) = ([], [])
            if accept(.op("(")) { args = try parseArgs() }
            e = .filter(e, f, args.0, args.1)
        }
        return e
    }
    /// Call arguments after `(`: positional, then `name=value` ones.
    mutating func parseArgs() throws -> ([Expr], [(String, Expr)]) {
        var args: [Expr] = [], kwargs: [(String, Expr)] = []
        if accept(.op(")")) { return (args, kwargs) }
        repeat {
            if case .name(let k) = peek, toks[i + 1] == .op("=") {
                i += 2
                kwargs.append((k, try parseConditional()))
            } else {
                guard kwargs.isEmpty else { throw JinjaError(description: "positional argument after a keyword argument") }
                args.append(try parseConditional())
            }
        } while accept(.op(",")) && peek != .op(")")
        try expect(.op(")"))
        return (args, kwargs)
    }

    /// `for` targets' iterable, then an optional `if` filter.
    mutating func parseForIterable() throws -> (Expr, Expr?) {
        let e = try nest { try $0.parseOr() }
        let cond = accept(.name("if")) ? try parseConditional() : nil
        guard peek == .end else { throw JinjaError(description: "unexpected \(peek) in for") }
        return (e, cond)
    }
    mutating func parsePostfix() throws -> Expr {
        var e = try parsePrimary()
        while true {
            if accept(.op(".")) {
                guard case .name(let a) = next() else { throw JinjaError(description: "expected an attribute name") }
                e = .attr(e, a)
            } else if accept(.op("[")) {
                var lo: Expr?, hi: Expr?, step: Expr?
                if !accept(.op(":")) {
                    lo = try parseConditional()
                    if !accept(.op(":")) { try expect(.op("]")); e = .item(e, lo!); continue }
                }
                if peek != .op("]") && peek != .op(":") { hi = try parseConditional() }
                if accept(.op(":")) && peek != .op("]") { step = try parseConditional() }
                try expect(.op("]"))
                e = .slice(e, lo, hi, step)
            } else if accept(.op("(")) {
                let (args, kwargs) = try parseArgs()
                e = .call(e, args, kwargs)
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
            if accept(.op(",")) {   // a tuple: a list here
                var items = [e]
                while peek != .op(")") { items.append(try parseConditional()); if !accept(.op(",")) { break } }
                try expect(.op(")"))
                return .list(items)
            }
            try expect(.op(")"))
            return e
        case .op("["):
            var items: [Expr] = []
            if !accept(.op("]")) {
                repeat { items.append(try parseConditional()) } while accept(.op(",")) && peek != .op("]")
                try expect(.op("]"))
            }
            return .list(items)
        case .op("{"):
            var pairs: [(Expr, Expr)] = []
            if !accept(.op("}")) {
                repeat {
                    let k = try parseConditional()
                    try expect(.op(":"))
                    pairs.append((k, try parseConditional()))
                } while accept(.op(",")) && peek != .op("}")
                try expect(.op("}"))
            }
            return .dictLiteral(pairs)
        case let t:
            throw JinjaError(description: "unexpected \(t) in template expression")
        }
    }
}
