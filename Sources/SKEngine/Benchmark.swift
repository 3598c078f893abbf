#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKRuntime

/// `skrun bench`'s measurement: a random prompt of `promptTokens` (seeded: the same at every run),
/// then `genTokens` greedy tokens, timed separately.
public enum Benchmark {
    public struct Result: Sendable {
        public var promptSeconds: Double
        public var generationSeconds: Double
    }

    /// `tick(generated, seconds)` after every generated token.
    public static func run(session: Session, promptTokens: Int, genTokens: Int, reportEvery: Int? = nil,
                           tick: (Int, Double) -> Void = { _, _ in }) throws -> Result {
        var r = Sampler(seed: 1)
        let vocab = session.model.config.vocabSize
        let prompt = (0..<promptTokens).map { _ in Int(r.nextUniformPublic() * Double(vocab - 1)) }
        let t1 = Date()
        var logits = try session.forward(prompt, logitsFor: [promptTokens - 1])
        let pp = Date().timeIntervalSince(t1)
        let t2 = Date()
        for g in 0..<genTokens {
            logits = try session.forward([Sampler.argmax(logits[...])], logitsFor: [0])
            tick(g + 1, Date().timeIntervalSince(t2))
        }
        return Result(promptSeconds: pp, generationSeconds: Date().timeIntervalSince(t2))
    }
}
