#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Rotary position embedding in Hugging Face's rotate_half layout, with the scaling variants of
/// transformers `modeling_rope_utils.py`: default, linear, dynamic (NTK), llama3, yarn and longrope.
public struct Rope {
    public let headDim: Int
    /// Inverse frequencies (headDim / 2), already scaled.
    public private(set) var invFreq: [Double]
    /// cos/sin multiplier (yarn's attention factor; 1 otherwise).
    public let attentionFactor: Double
    let config: ModelConfig
    /// longrope: whether `invFreq` holds the long factors (recomputed only when that changes).
    private var longropeLong = false

    public init(config c: ModelConfig) {
        config = c
        headDim = c.headDim
        let half = c.headDim / 2
        let base = (0..<half).map { 1.0 / pow(c.ropeTheta, Double(2 * $0) / Double(c.headDim)) }
        var factorAttn = 1.0
        switch c.ropeScalingType {
        case "linear":
            invFreq = base.map { $0 / c.ropeFactor }
        case "llama3":
            let lowWavelen = Double(c.ropeOriginalMax) / c.ropeLowFreqFactor
            let highWavelen = Double(c.ropeOriginalMax) / c.ropeHighFreqFactor
            invFreq = base.map { f in
                let wavelen = 2 * Double.pi / f
                if wavelen < highWavelen { return f }
                if wavelen > lowWavelen { return f / c.ropeFactor }
                let smooth = (Double(c.ropeOriginalMax) / wavelen - c.ropeLowFreqFactor) / (c.ropeHighFreqFactor - c.ropeLowFreqFactor)
                return (1 - smooth) * f / c.ropeFactor + smooth * f
            }
        case "yarn":
            let dim = Double(c.headDim), orig = Double(c.ropeOriginalMax)
            func correctionDim(_ rot: Double) -> Double { dim * log(orig / (rot * 2 * Double.pi)) / (2 * log(c.ropeTheta)) }
            let low = max(floor(correctionDim(c.ropeBetaFast)), 0), high = min(ceil(correctionDim(c.ropeBetaSlow)), dim - 1)
            invFreq = (0..<half).map { i in
                let interp = base[i] / c.ropeFactor, extrap = base[i]
                let ramp = min(max((Double(i) - low) / max(high - low, 0.001), 0), 1)
                let extrapFactor = 1 - ramp
                return interp * (1 - extrapFactor) + extrap * extrapFactor
            }
            factorAttn = 0.1 * log(c.ropeFactor) + 1
        case "longrope":
            // Phi-3 (transformers `_compute_longrope_parameters`): the short factors until a
            // sequence outgrows the original context (`adapt`), a fixed cos/sin multiplier.
            invFreq = Self.longrope(c, long: false)
            let s = c.ropeFactor != 1 ? c.ropeFactor : Double(c.maxPositionEmbeddings) / Double(c.ropeOriginalMax)
            factorAttn = c.ropeAttentionFactor ?? (s <= 1 ? 1 : (1 + log(s) / log(Double(c.ropeOriginalMax))).squareRoot())
        default:  // default, and dynamic until the sequence outgrows the original context
            invFreq = base
        }
        attentionFactor = factorAttn
    }

    /// Dynamic NTK scaling (transformers `_compute_dynamic_ntk_parameters`): once a sequence is
    /// longer than the original context, the base grows with it.
    /// longrope's inverse frequencies: 1 / (factor_i · θ^(2i/d)).
    static func longrope(_ c: ModelConfig, long: Bool) -> [Double] {
        let f = long ? c.ropeLongFactor : c.ropeShortFactor
        return (0..<(c.headDim / 2)).map { 1.0 / (f[$0] * pow(c.ropeTheta, Double(2 * $0) / Double(c.headDim))) }
    }

    /// longrope: the long factors once a sequence (position + this step's tokens) is longer than the
    /// original context, the short ones otherwise (transformers decides per forward call the same
    /// way; keys already cached keep the rotation they were stored with).
    public mutating func adapt(toSequenceLength n: Int) {
        if config.ropeScalingType == "longrope" {
            let long = n > config.ropeOriginalMax
            if long != longropeLong {
                invFreq = Self.longrope(config, long: long)
                longropeLong = long
            }
            return
        }
        guard config.ropeScalingType == "dynamic", n > config.maxPositionEmbeddings else { return }
        let c = config
        let seq = Double(n), orig = Double(c.maxPositionEmbeddings), dim = Double(c.headDim)
        let theta = c.ropeTheta * pow((c.ropeFactor * seq / orig) - (c.ropeFactor - 1), dim / (dim - 2))
        invFreq = (0..<(c.headDim / 2)).map { 1.0 / pow(theta, Double(2 * $0) / dim) }
    }

    /// Rotates one head vector by `delta` positions (no attention factor): moves a vector rotated
    /// at position p to position p + delta. Used on the fly, on scratch copies, for the "cache"
    /// position mode; cached keys themselves are never re-rotated.
    @inline(__always)
    public func rotate(_ x: UnsafeMutablePointer<Float>, by delta: Int) {
        Self.rotate(x, by: delta, invFreq: invFreq)
    }

    /// `rotate(_:by:)` for any inverse frequencies (direct trig per frequency).
    @inline(__always)
    static func rotate(_ x: UnsafeMutablePointer<Float>, by delta: Int, invFreq: [Double]) {
        guard delta != 0 else { return }
        let half = invFreq.count
        for i in 0..<half {
            let angle = Double(delta) * invFreq[i]
            let c = Float(cos(angle)), s = Float(sin(angle))
            let a = x[i], b = x[i + half]
            x[i] = a * c - b * s
            x[i + half] = b * c + a * s
        }
    }

    /// cos and sin (attention factor included) of every frequency for `count` positions from
    /// `start`: position p's `half` (cos, sin) pairs at `[(p − start) · headDim ..< … + headDim]`.
    /// Computed once per chunk and shared by every layer; `apply(_:heads:cosSin:)` uses it.
    public func cosSin(start: Int, count: Int) -> [Float] {
        let half = headDim / 2
        var t = [Float](repeating: 0, count: count * headDim)
        for p in 0..<count {
            for i in 0..<half {
                let angle = Double(start + p) * invFreq[i]
                t[p * headDim + 2 * i] = Float(cos(angle) * attentionFactor)
                t[p * headDim + 2 * i + 1] = Float(sin(angle) * attentionFactor)
            }
        }
        return t
    }

    /// `apply(_:heads:position:)` with the position's (cos, sin) pairs from `cosSin`.
    @inline(__always)
    public func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, cosSin cs: UnsafePointer<Float>) {
        let half = headDim / 2
        for i in 0..<half {
            let c = cs[2 * i], s = cs[2 * i + 1]
            for h in 0..<heads {
                let p = x + h * headDim
                let a = p[i], b = p[i + half]
                p[i] = a * c - b * s
                p[i + half] = b * c + a * s
            }
        }
    }

    /// Rotates `heads` vectors of `headDim` at `x` for one position.
    public func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, position: Int) {
        cosSin(start: position, count: 1).withUnsafeBufferPointer { apply(x, heads: heads, cosSin: $0.baseAddress!) }
    }
}
