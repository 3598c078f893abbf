import Dispatch
import SKCore

/// The fast quantizer: the same arithmetic as `QuantizeReference`, in the same order (so the
/// same bytes), but on raw pointers with scratch space on the stack, and rows spread over all
/// cores. It also measures the squared error of the round trip for the summary.
public enum BlockQuantizer {
    /// Quantizes a block of `group` values at `x` into `out` (one block of `type`).
    /// `codes` is scratch of at least `2 · group` doubles.
    @inline(__always)
    static func block(_ x: UnsafePointer<Float>, _ group: Int, _ type: QuantType, _ out: UnsafeMutableRawPointer,
                      _ xs: UnsafeMutablePointer<Double>, _ L: UnsafeMutablePointer<Double>, _ Lk: UnsafeMutablePointer<Double>) {
        for j in 0..<group { xs[j] = Double(x[j]) }
        switch type {
        case .int8: int8(xs, group, out)
        case .int4: int4(xs, group, out, L, Lk)
        case .int4Sym: int4Sym(xs, group, out, L)
        default: preconditionFailure("not a block type")
        }
    }

    /// Round half to even, inline: adding and subtracting 1.5·2⁵² rounds in the FPU's default
    /// mode (to nearest, ties to even) for |v| < 2⁵¹, the same value as `rounded(.toNearestOrEven)`,
    /// which a baseline x86-64 build compiles to a libm call (a third of int4-sym's time).
    @inline(__always) static func rint(_ v: Double) -> Double {
        let magic = 6_755_399_441_055_744.0
        return abs(v) < 2_251_799_813_685_248.0 ? (v + magic) - magic : v.rounded(.toNearestOrEven)
    }
    @inline(__always) static func clamp(_ v: Double, _ lo: Double, _ hi: Double) -> Double { min(max(v, lo), hi) }
    @inline(__always) static func store16(_ out: UnsafeMutableRawPointer, _ at: Int, _ v: Float16) {
        out.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: at, as: UInt16.self)
    }

    static func int8(_ x: UnsafeMutablePointer<Double>, _ g: Int, _ out: UnsafeMutableRawPointer) {
        var amax = 0.0
        for j in 0..<g { amax = max(amax, abs(x[j])) }
        let d = Float16(amax / 127)
        store16(out, 0, d)
        let dd = Double(d)
        let q = out.advanced(by: 2).assumingMemoryBound(to: Int8.self)
        for j in 0..<g { q[j] = dd == 0 ? 0 : Int8(clamp(rint(x[j] / dd), -127, 127)) }
    }

    @inline(__always)
    static func fit(_ x: UnsafeMutablePointer<Double>, _ L: UnsafeMutablePointer<Double>, _ g: Int) -> (Double, Double)? {
        var A = 0.0, B = 0.0, X = 0.0, Y = 0.0
        for j in 0..<g { A += L[j]; B += L[j] * L[j]; X += x[j]; Y += x[j] * L[j] }
        let n = Double(g)
        let D = n * B - A * A
        guard D > 0 else { return nil }
        let d = (n * Y - A * X) / D, m = (B * X - A * Y) / D
        return d > 0 ? (d, m) : nil
    }

    @inline(__always)
    static func err(_ x: UnsafeMutablePointer<Double>, _ L: UnsafeMutablePointer<Double>, _ g: Int, _ d: Double, _ m: Double) -> Double {
        var e = 0.0
        for j in 0..<g { let r = d * L[j] + m - x[j]; e += r * r }
        return e
    }

    static func int4(_ x: UnsafeMutablePointer<Double>, _ g: Int, _ out: UnsafeMutableRawPointer,
                     _ L: UnsafeMutablePointer<Double>, _ Lk: UnsafeMutablePointer<Double>) {
        var lo = x[0], hi = x[0]
        for j in 1..<g { lo = min(lo, x[j]); hi = max(hi, x[j]) }
        var d = 0.0, m = lo
        if hi != lo {
            d = (hi - lo) / 15
            for j in 0..<g { L[j] = clamp(rint((x[j] - lo) / d), 0, 15) }
            var best = err(x, L, g, d, m)
            let range = hi - lo
            // No candidate can beat an exact fit (strictly smaller error wins), so a block that
            // already sits on a 4-bit grid skips the search: same bytes, less work.
            for anchor in 0..<(best == 0 ? 0 : 2) {          // codes anchored at the minimum, then at the maximum
                for k in 0...20 {
                    let s = (15 + 0.1 * Double(k - 10)) / range
                    if anchor == 0 {
                        for j in 0..<g { Lk[j] = clamp(rint(s * (x[j] - lo)), 0, 15) }
                    } else {
                        for j in 0..<g { Lk[j] = clamp(15 - rint(s * (hi - x[j])), 0, 15) }
                    }
                    guard let (dk, mk) = fit(x, Lk, g) else { continue }
                    let e = err(x, Lk, g, dk, mk)
                    if e < best { best = e; d = dk; m = mk }
                }
            }
            for _ in 0..<(best == 0 ? 0 : 2) {
                for j in 0..<g { Lk[j] = clamp(rint((x[j] - m) / d), 0, 15) }
                guard let (dr, mr) = fit(x, Lk, g) else { break }
                let e = err(x, Lk, g, dr, mr)
                if e < best { best = e; d = dr; m = mr } else { break }
            }
        }
        let d16 = Float16(d), m16 = Float16(m)
        store16(out, 0, d16)
        store16(out, 2, m16)
        let dd = Double(d16), mm = Double(m16)
        let qs = out.advanced(by: 4).assumingMemoryBound(to: UInt8.self)
        let h = g / 2
        for j in 0..<h {
            let a = dd == 0 ? 0 : UInt8(clamp(rint((x[j] - mm) / dd), 0, 15))
            let b = dd == 0 ? 0 : UInt8(clamp(rint((x[j + h] - mm) / dd), 0, 15))
            qs[j] = a | (b << 4)
        }
    }

    @inline(__always)
    static func symErr(_ x: UnsafeMutablePointer<Double>, _ c: UnsafeMutablePointer<Double>, _ g: Int, _ d: Double) -> Double {
        var e = 0.0
        for j in 0..<g { let r = d * c[j] - x[j]; e += r * r }
        return e
    }

    @inline(__always)
    static func symFit(_ x: UnsafeMutablePointer<Double>, _ c: UnsafeMutablePointer<Double>, _ g: Int) -> Double? {
        var xc = 0.0, cc = 0.0
        for j in 0..<g { xc += x[j] * c[j]; cc += c[j] * c[j] }
        return cc > 0 ? xc / cc : nil
    }

    static func int4Sym(_ x: UnsafeMutablePointer<Double>, _ g: Int, _ out: UnsafeMutableRawPointer, _ c: UnsafeMutablePointer<Double>) {
        var v = 0.0
        for j in 0..<g where abs(x[j]) > abs(v) { v = x[j] }
        var d = 0.0
        if v != 0 {
            d = v / -8
            for j in 0..<g { c[j] = clamp(rint(x[j] / d), -8, 7) }
            var best = symErr(x, c, g, d)
            for k in 0...20 {
                let s = -(8 + 0.1 * Double(k - 10)) / v
                for j in 0..<g { c[j] = clamp(rint(s * x[j]), -8, 7) }
                guard let dk = symFit(x, c, g) else { continue }
                let e = symErr(x, c, g, dk)
                if e < best { best = e; d = dk }
            }
            for _ in 0..<2 {
                for j in 0..<g { c[j] = clamp(rint(x[j] / d), -8, 7) }
                guard let dr = symFit(x, c, g) else { break }
                let e = symErr(x, c, g, dr)
                if e < best { best = e; d = dr } else { break }
            }
        }
        let d16 = Float16(d)
        store16(out, 0, d16)
        let dd = Double(d16)
        let qs = out.advanced(by: 2).assumingMemoryBound(to: UInt8.self)
        let h = g / 2
        for j in 0..<h {
            let a = dd == 0 ? 8 : UInt8(clamp(rint(x[j] / dd), -8, 7) + 8)
            let b = dd == 0 ? 8 : UInt8(clamp(rint(x[j + h] / dd), -8, 7) + 8)
            qs[j] = a | (b << 4)
        }
    }

    /// Quantizes a `rows × cols` f32 matrix into `out` (exactly `type.byteCount` bytes), rows
    /// spread over `threads` cores. Returns the sum of squared round-trip errors.
    /// Throws on NaN/Inf input (naming the element) and on a group that does not divide a row.
    public static func quantize(_ src: UnsafeBufferPointer<Float>, rows: Int, cols: Int, type: QuantType, group: Int,
                                into out: UnsafeMutableRawBufferPointer, threads: Int = defaultThreads) throws -> Double {
        guard type.isQuantized, let need = type.byteCount(rows: rows, cols: cols, group: group) else {
            throw SinkKitError(.invalidArgument, "group size \(group) does not divide the row length \(cols)")
        }
        guard src.count == rows * cols, out.count == need else {
            throw SinkKitError(.invalidArgument, "quantize: \(src.count) inputs / \(out.count) output bytes for \(rows) × \(cols) \(type.userName)")
        }
        for i in 0..<src.count where !src[i].isFinite {
            throw SinkKitError(.nonFinite, "non-finite value \(src[i]) at row \(i / cols), column \(i % cols)")
        }
        let blockBytes = type.blockBytes(group: group)
        let rowBytes = (cols / group) * blockBytes
        let chunks = max(1, min(rows, threads * 8))
        var partial = [Double](repeating: 0, count: chunks)
        partial.withUnsafeMutableBufferPointer { sse in
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks
                let scratch = UnsafeMutablePointer<Double>.allocate(capacity: 3 * group)
                var deq = [Float](repeating: 0, count: group)
                defer { scratch.deallocate() }
                var e = 0.0
                for r in r0..<r1 {
                    for b in 0..<(cols / group) {
                        let x = src.baseAddress! + r * cols + b * group
                        let o = out.baseAddress! + r * rowBytes + b * blockBytes
                        block(x, group, type, o, scratch, scratch + group, scratch + 2 * group)
                        deq.withUnsafeMutableBufferPointer { Dequantize.block(UnsafeRawPointer(o), type: type, group: group, into: $0.baseAddress!) }
                        for j in 0..<group { let r = Double(deq[j]) - Double(x[j]); e += r * r }
                    }
                }
                sse[c] = e
            }
        }
        return partial.reduce(0, +)
    }

    public static var defaultThreads: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}

import Foundation
