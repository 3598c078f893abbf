import SKCore
import SKModel

/// LongLoRA's context extension written into config.json: linear RoPE scaling with
/// `factor = ceil(N / max_position_embeddings)`, `max_position_embeddings` unchanged.
public enum RopeContext {
    public enum Outcome: Equatable {
        case unchanged(reason: String)
        case linear(factor: Double)
    }

    public static func plan(context n: Int, config c: LlamaConfig) throws -> Outcome {
        guard n > 0 else { throw SinkKitError(.invalidArgument, "--context must be positive, got \(n)") }
        if let s = c.ropeScaling, s.type != "linear", s.type != "default" {
            throw SinkKitError(.refused, "\(c.path): the base already uses \(s.type) RoPE scaling; --context (linear scaling) cannot be combined with it")
        }
        let trained = c.trainedContext
        if n <= trained {
            return .unchanged(reason: "--context \(n) fits the model's context of \(trained) tokens; RoPE scaling left as is")
        }
        let factor = Double((n + c.maxPositionEmbeddings - 1) / c.maxPositionEmbeddings)
        return .linear(factor: factor)
    }
}
