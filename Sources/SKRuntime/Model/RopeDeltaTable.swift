#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// cos/sin of `delta · θᵢ` for integer deltas, from two tables of 1024 rows each joined by angle
/// addition (|delta| < 2²⁰; larger deltas fall back to direct trig). The "cache" position mode
/// moves every cached key from its absolute position to its slot on every step: with trig per
/// key and frequency that was ~18M sin/cos calls per token on SmolLM2 with 1,024 slots.
final class RopeDeltaTable {
    let invFreq: [Double]
    let half: Int
    private static let bits = 10, rows = 1 << bits
    /// Row r holds cos(r·θᵢ) for i < half, then sin(r·θᵢ); `hi` steps by 1024 positions.
    private var lo: [Float], hi: [Float]

    init(invFreq: [Double]) {
        self.invFreq = invFreq
        half = invFreq.count
        let n = Self.rows, h = half
        func table(step: Double) -> [Float] {
            var t = [Float](repeating: 0, count: n * 2 * h)
            for r in 0..<n {
                for i in 0..<h {
                    let a = Double(r) * step * invFreq[i]
                    t[r * 2 * h + i] = Float(cos(a))
                    t[r * 2 * h + h + i] = Float(sin(a))
                }
            }
            return t
        }
        lo = table(step: 1)
        hi = table(step: Double(n))
    }

    /// Writes `src` rotated by `delta` positions to `dst` (rotate_half layout, no attention
    /// factor): a vector rotated at position p moves to p + delta.
    @inline(__always)
    func rotate(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, by delta: Int) {
        let h = half
        if delta == 0 { dst.update(from: src, count: 2 * h); return }
        let m = delta.magnitude, sign: Float = delta < 0 ? -1 : 1
        guard m < UInt(Self.rows * Self.rows) else {
            dst.update(from: src, count: 2 * h)
            Rope.rotate(dst, by: delta, invFreq: invFreq)
            return
        }
        let l = Int(m) & (Self.rows - 1), u = Int(m) >> Self.bits
        lo.withUnsafeBufferPointer { lp in
            hi.withUnsafeBufferPointer { hp in
                let a = lp.baseAddress! + l * 2 * h, b = hp.baseAddress! + u * 2 * h
                for i in 0..<h {
                    // cos/sin(u·1024θ + lθ), then the sign of delta on the sine
                    let c = b[i] * a[i] - b[h + i] * a[h + i]
                    let s = (b[h + i] * a[i] + b[i] * a[h + i]) * sign
                    let x = src[i], y = src[i + h]
                    dst[i] = x * c - y * s
                    dst[i + h] = y * c + x * s
                }
            }
        }
    }
}
