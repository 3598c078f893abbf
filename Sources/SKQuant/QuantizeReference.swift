import SKCore

/// The scalar reference quantizers: a direct transcription of Formats/SKM.md "How SinkKit
/// quantizes", one block at a time, written to be read rather than to be fast. The fast
/// quantizer (`BlockQuantizer`) must produce the same bytes; tests hold them to it.
public enum QuantizeReference {
    @inline(__always) static func rint(_ v: Double) -> Double { v.rounded(.toNearestOrEven) }
    @inline(__always) static func clamp(_ v: Double, _ lo: Double, _ hi: Double) -> Double { min(max(v, lo), hi) }
    @inline(__always) static func f16(_ v: Double) -> Float16 { Float16(v) }

    /// One block, encoded into `type`'s block layout.
    public static func quantizeBlock(_ xf: [Float], type: QuantType) -> [UInt8] {
        let x = xf.map(Double.init)
        switch type {
        case .int8: return int8(x)
        case .int4: return int4(x)
        case .int4Sym: return int4Sym(x)
        case .int5Sym: return int5Sym(x)
        default: preconditionFailure("not a block type")
        }
    }

    static func int8(_ x: [Double]) -> [UInt8] {
        let amax = x.map(abs).max()!
        let d = f16(amax / 127)
        let dd = Double(d)
        var out = bytes(of: d.bitPattern)
        for v in x {
            let q = dd == 0 ? 0 : clamp(rint(v / dd), -127, 127)
            out.append(UInt8(bitPattern: Int8(q)))
        }
        return out
    }

    /// Least-squares `d, m` for fixed codes `L` (nil when degenerate).
    static func fit(_ x: [Double], _ L: [Double]) -> (Double, Double)? {
        let n = Double(x.count)
        var A = 0.0, B = 0.0, X = 0.0, Y = 0.0
        for j in 0..<x.count { A += L[j]; B += L[j] * L[j]; X += x[j]; Y += x[j] * L[j] }
        let D = n * B - A * A
        guard D > 0 else { return nil }
        let d = (n * Y - A * X) / D, m = (B * X - A * Y) / D
        guard d > 0 else { return nil }
        return (d, m)
    }

    static func error(_ x: [Double], _ L: [Double], _ d: Double, _ m: Double) -> Double {
        var e = 0.0
        for j in 0..<x.count { let r = d * L[j] + m - x[j]; e += r * r }
        return e
    }

    static func int4(_ x: [Double]) -> [UInt8] {
        let lo = x.min()!, hi = x.max()!
        var d = 0.0, m = lo
        if hi != lo {
            d = (hi - lo) / 15
            var L = x.map { clamp(rint(($0 - lo) / d), 0, 15) }
            var best = error(x, L, d, m)
            for anchoredAtMax in [false, true] {
                for k in 0...20 {
                    let s = (15 + 0.1 * Double(k - 10)) / (hi - lo)
                    let Lk = x.map { anchoredAtMax ? clamp(15 - rint(s * (hi - $0)), 0, 15) : clamp(rint(s * ($0 - lo)), 0, 15) }
                    guard let (dk, mk) = fit(x, Lk) else { continue }
                    let e = error(x, Lk, dk, mk)
                    if e < best { best = e; d = dk; m = mk; L = Lk }
                }
            }
            for _ in 0..<2 {
                let Lr = x.map { clamp(rint(($0 - m) / d), 0, 15) }
                guard let (dr, mr) = fit(x, Lr) else { break }
                let e = error(x, Lr, dr, mr)
                if e < best { best = e; d = dr; m = mr; L = Lr } else { break }
            }
            _ = L
        }
        let d16 = f16(d), m16 = f16(m)
        let dd = Double(d16), mm = Double(m16)
        let q = x.map { dd == 0 ? 0 : UInt8(clamp(rint(($0 - mm) / dd), 0, 15)) }
        return bytes(of: d16.bitPattern) + bytes(of: m16.bitPattern) + nibbles(q)
    }

    static func symError(_ x: [Double], _ c: [Double], _ d: Double) -> Double {
        var e = 0.0
        for j in 0..<x.count { let r = d * c[j] - x[j]; e += r * r }
        return e
    }

    static func symFit(_ x: [Double], _ c: [Double]) -> Double? {
        var xc = 0.0, cc = 0.0
        for j in 0..<x.count { xc += x[j] * c[j]; cc += c[j] * c[j] }
        return cc > 0 ? xc / cc : nil
    }

    /// The symmetric search with codes in [−n, n − 1] (int4-sym: n = 8, int5-sym: n = 16).
    static func symScale(_ x: [Double], n: Double) -> Double {
        var v = 0.0
        for e in x where abs(e) > abs(v) { v = e }
        var d = 0.0
        if v != 0 {
            d = v / -n
            var best = symError(x, x.map { clamp(rint($0 / d), -n, n - 1) }, d)
            for k in 0...20 {
                let s = -(n + 0.1 * Double(k - 10)) / v
                let c = x.map { clamp(rint(s * $0), -n, n - 1) }
                guard let dk = symFit(x, c) else { continue }
                let e = symError(x, c, dk)
                if e < best { best = e; d = dk }
            }
            for _ in 0..<2 {
                let c = x.map { clamp(rint($0 / d), -n, n - 1) }
                guard let dr = symFit(x, c) else { break }
                let e = symError(x, c, dr)
                if e < best { best = e; d = dr } else { break }
            }
        }
        return d
    }

    static func int4Sym(_ x: [Double]) -> [UInt8] {
        let d16 = f16(symScale(x, n: 8))
        let dd = Double(d16)
        let q = x.map { dd == 0 ? UInt8(8) : UInt8(clamp(rint($0 / dd), -8, 7) + 8) }
        return bytes(of: d16.bitPattern) + nibbles(q)
    }

    /// int5-sym: the low four bits of each code as int4-sym's nibbles, then the fifth bits,
    /// element j at bit j mod 8 of byte j / 8.
    static func int5Sym(_ x: [Double]) -> [UInt8] {
        let d16 = f16(symScale(x, n: 16))
        let dd = Double(d16)
        let q = x.map { dd == 0 ? UInt8(16) : UInt8(clamp(rint($0 / dd), -16, 15) + 16) }
        var high = [UInt8](repeating: 0, count: q.count / 8)
        for j in 0..<q.count {
            let bit: UInt8 = (q[j] >> 4) & 1
            high[j / 8] |= bit << UInt8(j % 8)
        }
        return bytes(of: d16.bitPattern) + nibbles(q.map { $0 & 15 }) + high
    }

    static func bytes(of v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }

    /// Byte j: element j in the low nibble, element j + G/2 in the high nibble.
    static func nibbles(_ q: [UInt8]) -> [UInt8] {
        let h = q.count / 2
        return (0..<h).map { q[$0] | (q[$0 + h] << 4) }
    }

    /// Decodes one block back to f32 (`f32(d)·f32(q) + f32(m)`).
    public static func dequantizeBlock(_ b: [UInt8], type: QuantType, group: Int) -> [Float] {
        func half(_ i: Int) -> Float { Float(Float16(bitPattern: UInt16(b[i]) | UInt16(b[i + 1]) << 8)) }
        switch type {
        case .int8:
            let d = half(0)
            return (0..<group).map { d * Float(Int8(bitPattern: b[2 + $0])) }
        case .int4:
            let d = half(0), m = half(2)
            return (0..<group).map { j in
                let byte = b[4 + j % (group / 2)]
                let q = j < group / 2 ? byte & 0x0f : byte >> 4
                return d * Float(q) + m
            }
        case .int4Sym:
            let d = half(0)
            return (0..<group).map { j in
                let byte = b[2 + j % (group / 2)]
                let q = j < group / 2 ? byte & 0x0f : byte >> 4
                return d * Float(Int(q) - 8)
            }
        case .int5Sym:
            let d = half(0), h = group / 2
            return (0..<group).map { j in
                let byte = b[2 + j % h]
                let lo = Int(j < h ? byte & 0x0f : byte >> 4), hi = Int((b[2 + h + j / 8] >> UInt8(j % 8)) & 1)
                return d * Float((lo | (hi << 4)) - 16)
            }
        default: preconditionFailure("not a block type")
        }
    }
}
