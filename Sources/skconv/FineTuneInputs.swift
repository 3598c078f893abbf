import ArgumentParser
import SKCore

/// What `merge` and `quantize` both read beside the base checkpoint: PEFT adapters, LongLoRA's
/// fully trained tensors, and the target context for RoPE scaling.
struct FineTuneInputs: ParsableArguments {
    @Option(help: "PEFT adapter directory; repeat to apply several, in order.", completion: .directory)
    var adapter: [String] = []

    @Option(name: .customLong("trainable-params"), help: "LongLoRA trainable_params.bin (torch.save) or .safetensors with fully trained embeddings/norms.")
    var trainableParams: String?

    @Option(help: "Target context: above max_position_embeddings, write linear RoPE scaling ceil(N / max_position_embeddings).")
    var context: Int?

    var isEmpty: Bool { adapter.isEmpty && trainableParams == nil && context == nil }

    func validate() throws {
        if let c = context, !(1...Limits.maxPositions).contains(c) {
            throw ValidationError("--context must be between 1 and \(Limits.maxPositions) (got \(c))")
        }
    }
}
