#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension String {
    /// printf-style formatting without full Foundation (whose `String(format:)` pulls in ICU):
    /// `%d %i %u %x %X %o %c %e %E %f %F %g %G %s %@ %%` with flags, width and precision, each
    /// conversion handed to the C library's snprintf. `%s` and `%@` take any value (its
    /// description, width and precision apply); `%d` takes any integer; `%f` any floating point
    /// or integer. An argument of the wrong kind, or a missing one, prints as `?`.
    public init(printf format: String, _ args: Any...) {
        var out = ""
        var next = args.makeIterator()
        var spec = ""
        var inSpec = false
        for ch in format {
            if !inSpec {
                if ch == "%" { inSpec = true; spec = "%" } else { out.append(ch) }
                continue
            }
            spec.append(ch)
            guard ch.isLetter || ch == "%" || ch == "@" else { continue }
            inSpec = false
            if ch == "l" || ch == "h" || ch == "z" || ch == "q" || ch == "j" || ch == "t" { inSpec = true; continue }
            let body = spec.filter { $0 != "l" && $0 != "h" && $0 != "z" && $0 != "q" && $0 != "j" && $0 != "t" }
            out += Self.convert(body, ch, ch == "%" ? nil : next.next())
        }
        if inSpec { out += spec }
        self = out
    }

    private static func convert(_ spec: String, _ conversion: Character, _ arg: Any?) -> String {
        switch conversion {
        case "%": return "%"
        case "c":
            guard let v = integer(arg), let u = Unicode.Scalar(UInt32(truncatingIfNeeded: v)) else { return "?" }
            return String(Character(u))
        case "d", "i", "u", "x", "X", "o":
            guard let v = integer(arg) else { return "?" }
            let s = spec.dropLast() + "ll" + String(conversion)
            return snprintf(String(s), v)
        case "e", "E", "f", "F", "g", "G", "a", "A":
            guard let v = floating(arg) else { return "?" }
            return snprintf(spec, v)
        case "s", "@":
            guard let arg else { return "?" }
            let text = arg as? String ?? String(describing: arg)
            // Width and precision count characters here, as Foundation's %@ does.
            let flags = spec.dropFirst().dropLast()
            let left = flags.contains("-")
            let parts = flags.filter { $0 != "-" }.split(separator: ".", omittingEmptySubsequences: false)
            let width = parts.first.flatMap { Int($0) } ?? 0
            let precision = parts.count > 1 ? Int(parts[1]) ?? 0 : nil
            let cut = precision.map { String(text.prefix($0)) } ?? text
            let pad = String(repeating: " ", count: Swift.max(0, width - cut.count))
            return left ? cut + pad : pad + cut
        default:
            return spec
        }
    }

    private static func integer(_ v: Any?) -> Int64? {
        switch v {
        case let x as Int: return Int64(x)
        case let x as Int64: return x
        case let x as Int32: return Int64(x)
        case let x as Int16: return Int64(x)
        case let x as Int8: return Int64(x)
        case let x as UInt: return Int64(bitPattern: UInt64(x))
        case let x as UInt64: return Int64(bitPattern: x)
        case let x as UInt32: return Int64(x)
        case let x as UInt16: return Int64(x)
        case let x as UInt8: return Int64(x)
        default: return nil
        }
    }

    private static func floating(_ v: Any?) -> Double? {
        switch v {
        case let x as Double: return x
        case let x as Float: return Double(x)
        case let x as Float16: return Double(x)
        default: return integer(v).map(Double.init)
        }
    }

    private static func snprintf(_ spec: String, _ value: CVarArg) -> String {
        withVaList([value]) { va in
            var buffer = [CChar](repeating: 0, count: 512)
            let n = buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, 512, spec, va) }
            if n >= 512 {
                buffer = [CChar](repeating: 0, count: Int(n) + 1)
                return withVaList([value]) { va2 in
                    _ = buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, Int(n) + 1, spec, va2) }
                    return String(cString: buffer)
                }
            }
            return String(cString: buffer)
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing white space (Unicode White_Space, newlines
    /// included: Foundation's `.whitespacesAndNewlines`, Python's `str.strip()`).
    public func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
