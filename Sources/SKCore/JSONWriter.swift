#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Writes a tree of `[String: Any]`, `[Any]` (or any Swift array), `String`, `Bool`, integers,
/// `Double`/`Float` (finite; Swift's shortest text that reads back to the same value, "4.0" for four), `JSONNumber`
/// (its literal), `JSONNull` and `Optional.none` (null) as JSON text. Object keys are sorted (byte
/// order) so output is stable; slashes are not escaped; non-ASCII text is written as UTF-8.
public enum JSONWriter {
    public static func string(_ value: Any, pretty: Bool = false) throws -> String {
        var out = ""
        try write(value, into: &out, pretty: pretty, indent: 0)
        return out
    }

    public static func data(_ value: Any, pretty: Bool = false) throws -> Data {
        Data(try string(value, pretty: pretty).utf8)
    }

    private static func write(_ value: Any, into out: inout String, pretty: Bool, indent: Int) throws {
        switch value {
        case let v as String: quote(v, into: &out)
        case let v as Bool: out += v ? "true" : "false"
        case let v as JSONNumber: out += v.literal
        case is JSONNull: out += "null"
        case let v as Int: out += String(v)
        case let v as Int64: out += String(v)
        case let v as Int32: out += String(v)
        case let v as UInt64: out += String(v)
        case let v as UInt32: out += String(v)
        case let v as UInt: out += String(v)
        case let v as Double:
            guard v.isFinite else { throw SinkKitError(.nonFinite, "JSON cannot hold the number \(v)") }
            out += v.description
        case let v as Float:
            guard v.isFinite else { throw SinkKitError(.nonFinite, "JSON cannot hold the number \(v)") }
            out += v.description
        case let d as [String: Any]:
            if d.isEmpty { out += "{}"; return }
            out += "{"
            for (i, key) in d.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if i > 0 { out += "," }
                newline(&out, pretty, indent + 1)
                quote(key, into: &out)
                out += pretty ? ": " : ":"
                try write(d[key]!, into: &out, pretty: pretty, indent: indent + 1)
            }
            newline(&out, pretty, indent)
            out += "}"
        case let a as [Any]:
            if a.isEmpty { out += "[]"; return }
            out += "["
            for (i, e) in a.enumerated() {
                if i > 0 { out += "," }
                newline(&out, pretty, indent + 1)
                try write(e, into: &out, pretty: pretty, indent: indent + 1)
            }
            newline(&out, pretty, indent)
            out += "]"
        default:
            // An Optional inside Any: nil is null, a value is written as itself.
            let m = Mirror(reflecting: value)
            if m.displayStyle == .optional {
                if let inner = m.children.first?.value { try write(inner, into: &out, pretty: pretty, indent: indent) } else { out += "null" }
                return
            }
            throw SinkKitError(.refused, "JSON cannot hold a value of type \(type(of: value))")
        }
    }

    private static func newline(_ out: inout String, _ pretty: Bool, _ indent: Int) {
        guard pretty else { return }
        out += "\n"
        out += String(repeating: "  ", count: indent)
    }

    /// `s` as a JSON string literal: `"`, `\\`, the C escapes, other control characters as
    /// `\\u00XX`; DEL too unless `escapingDelete` is false (Python's json.dumps leaves it).
    public static func quoted(_ s: String, escapingDelete: Bool = true) -> String {
        var out = ""
        quote(s, into: &out, escapingDelete: escapingDelete)
        return out
    }

    private static func quote(_ s: String, into out: inout String, escapingDelete: Bool = true) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 || (u.value == 0x7F && escapingDelete) {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}
