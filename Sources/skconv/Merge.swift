import ArgumentParser
import Foundation
import SKCLI
import SKCore
import SKMerge

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge PEFT LoRA adapters (and LongLoRA trainable params) into a base checkpoint.")

    @Option(help: "Base Hugging Face model directory (config.json + safetensors).", completion: .directory)
    var base: String

    @OptionGroup var inputs: FineTuneInputs

    @Option(help: "Storage type of the output: auto (keep the base's), f32, f16, bf16.", completion: .list(["auto", "f32", "f16", "bf16"]))
    var dtype: String = "auto"

    @Option(help: "Output directory (written to a temporary directory, then renamed).", completion: .directory)
    var output: String

    @Flag(help: "Replace an existing output.")
    var force = false

    @Flag(help: "No progress output.")
    var quiet = false

    @Flag(help: "Print a JSON summary (counts, vocab, peak RSS) on standard output.")
    var json = false

    func validate() throws {
        if inputs.isEmpty {
            throw ValidationError("nothing to merge: give --adapter, --trainable-params or --context")
        }
        if dtype != "auto" && DType(userName: dtype) == nil {
            throw ValidationError("--dtype must be auto, f32, f16 or bf16 (got \(dtype))")
        }
    }

    func run() throws {
        try runReportingErrors {
            let job = MergeJob(baseDirectory: base, adapterDirectories: inputs.adapter, trainableParamsPath: inputs.trainableParams,
                               context: inputs.context, dtype: dtype == "auto" ? nil : DType(userName: dtype),
                               outputDirectory: output, force: force)
            let progress = ProgressLine(label: "merge", quiet: quiet)
            let start = Date()
            let report = try Merger(job: job).run { done, total, name in
                progress.update(done: done, total: total, detail: name)
            }
            progress.finish()
            for w in report.warnings { eprint("warning: \(w)") }
            var lines = ["merged \(report.loraModulesMerged) LoRA modules, replaced \(report.tensorsReplaced) tensors, wrote \(report.tensorsWritten) tensors (\(formatBytes(report.outputBytes))) to \(output)"]
            if report.vocabSize != report.previousVocabSize { lines.append("vocab_size \(report.previousVocabSize) -> \(report.vocabSize) (new rows = mean of existing rows)") }
            if let f = report.ropeScalingWritten { lines.append("rope_scaling: linear, factor \(Int(f))") }
            if let p = report.peakResidentBytes {
                lines.append(String(format: "peak RSS %@ (largest tensor %@), %.1f s", formatBytes(p), formatBytes(report.largestTensorBytes), Date().timeIntervalSince(start)))
            }
            if !quiet { for l in lines { eprint(l) } }
            if json {
                let d: [String: Any] = [
                    "output": output, "lora_modules_merged": report.loraModulesMerged, "tensors_replaced": report.tensorsReplaced,
                    "tensors_written": report.tensorsWritten, "output_bytes": report.outputBytes, "vocab_size": report.vocabSize,
                    "previous_vocab_size": report.previousVocabSize, "rope_scaling_factor": report.ropeScalingWritten as Any,
                    "peak_rss_bytes": report.peakResidentBytes as Any, "largest_tensor_bytes": report.largestTensorBytes,
                    "warnings": report.warnings, "seconds": Date().timeIntervalSince(start),
                ]
                let data = try JSONWriter.data(d)
                print(String(decoding: data, as: UTF8.self))
            }
        }
    }
}
