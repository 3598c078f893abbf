#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Token sampling with llama.cpp's usual chain: repetition penalty over the last tokens, then
/// top-k, top-p, min-p and temperature. Temperature 0 is greedy (argmax, lowest id on ties).
/// Seeded SplitMix64: the same seed gives the same tokens, whatever the thread count.
public struct Sampler {
    public var temperature: Float = 0.8
    public var topK = 40
    public var topP: Float = 0.95
    public var minP: Float = 0.05
    public var repeatPenalty: Float = 1.0
    public var repeatLastN = 64
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    mutating func nextUniform() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }

    /// A uniform draw in [0, 1) (benchmarks use it for random prompts).
    public mutating func nextUniformPublic() -> Double { nextUniform() }

    public static func argmax(_ logits: ArraySlice<Float>) -> Int {
        var best = logits.startIndex
        for i in logits.indices where logits[i] > logits[best] { best = i }
        return best - logits.startIndex
    }

    public mutating func sample(_ logitsIn: ArraySlice<Float>, history: [Int]) -> Int {
        var logits = Array(logitsIn)
        if repeatPenalty != 1 {
            for t in Set(history.suffix(repeatLastN)) where t < logits.count {
                logits[t] = logits[t] > 0 ? logits[t] / repeatPenalty : logits[t] * repeatPenalty
            }
        }
        if temperature <= 0 { return Self.argmax(logits[...]) }
        var cand = logits.indices.map { ($0, logits[$0]) }
        cand.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        if topK > 0 && topK < cand.count { cand.removeSubrange(topK...) }
        let mx = cand[0].1
        var probs = cand.map { Double(exp(($0.1 - mx) / temperature)) }
        var total = probs.reduce(0, +)
        if topP < 1 {
            var cum = 0.0, keep = probs.count
            for (i, p) in probs.enumerated() { cum += p / total; if cum >= Double(topP) { keep = i + 1; break } }
            probs.removeSubrange(keep...)
            cand.removeSubrange(keep...)
        }
        if minP > 0 {
            let floor = probs[0] * Double(minP)
            let keep = max(1, probs.firstIndex { $0 < floor } ?? probs.count)
            probs.removeSubrange(keep...)
            cand.removeSubrange(keep...)
        }
        total = probs.reduce(0, +)
        var r = nextUniform() * total
        for (i, p) in probs.enumerated() {
            r -= p
            if r <= 0 { return cand[i].0 }
        }
        return cand[cand.count - 1].0
    }
}
