import ArgumentParser
import Foundation
import SKConvert
import SKCLI
import SKCore

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a Hugging Face checkpoint (optionally merging adapters on the fly) into one SKM file.")

    @Option(help: "Hugging Face model directory, or a GGUF file (llama architecture; Q8_0/Q4_0/Q4_1/Q5_0 blocks are carried over bit for bit when --type is the same values).", completion: .file())
    var model: String

    @OptionGroup var inputs: FineTuneInputs

    @Option(help: "Default type: f32, f16, int8, int5-sym (f16 scale, 5.5 bits), int4 (f16 scale + f16 minimum) or int4-sym (f16 scale); llama.cpp's q8_0, q5_0, q4_0 and q4_1 name int8, int5-sym, int4-sym and int4. mixed: int5-sym with int8 where the model is sensitive (v_proj, the output head), about Q4_K_M's size; best with --imatrix.", completion: .list(["mixed", "int4", "int4-sym", "int5-sym", "int8", "f16", "f32", "q8_0", "q5_0", "q4_0", "q4_1"]))
    var type: String

    @Option(help: "Elements per block for int4/int4-sym: 32 (default), 64 or 128.", completion: .list(["32", "64", "128"]))
    var group: Int?

    @Option(name: .customLong("tensor-type"), help: "REGEX=TYPE[:GROUP] override, first match wins (e.g. down_proj=int4:64).")
    var tensorType: [String] = []

    @Option(help: "Importance matrix from skconv calibrate: int4, int4-sym and int5-sym blocks minimise the activation-weighted error.", completion: .file(extensions: ["imatrix"]))
    var imatrix: String?

    @Flag(help: "Store tensors zstd-compressed (for shipping; the runtime decompresses at load).")
    var compress = false

    @Option(help: "Output .skm file (written to a temporary file, then renamed), or .gguf: the same model as GGUF for llama.cpp (f32, f16, and at group 32 int8/int4-sym/int4/int5-sym as Q8_0/Q4_0/Q4_1/Q5_0).", completion: .file(extensions: ["skm", "gguf"]))
    var output: String

    @Flag(help: "Replace an existing output.")
    var force = false

    @Option(help: "Threads for quantization (default: all cores).")
    var threads: Int?

    @Flag(help: "Print the summary as JSON on standard output.")
    var json = false

    func validate() throws {
        if type.lowercased() != "mixed" {
            do { _ = try QuantType.parse(type, flag: "--type") } catch let e as SinkKitError { throw ValidationError(e.message) }
        }
        let ext = output.split(separator: "/").last.flatMap { n in n.contains(".") ? n.split(separator: ".").last.map { $0.lowercased() } : nil }
        if let ext, ["ggml", "bin", "safetensors", "pt", "pth", "onnx", "json", "npz"].contains(ext) {
            throw ValidationError("--output \(output): skconv quantize writes an SKM file (or a GGUF file named .gguf); a .\(ext) name would say otherwise (name it .skm)")
        }
        if let t = threads, !(1...Limits.maxThreads).contains(t) { throw ValidationError("--threads must be between 1 and \(Limits.maxThreads) (got \(t))") }
    }

    func run() throws {
        try runReportingErrors {
            let mixed = type.lowercased() == "mixed"
            var job = QuantizeJob(modelDirectory: model, type: mixed ? .int5Sym : try QuantType.parse(type, flag: "--type"), output: output)
            job.mixed = mixed
            job.adapterDirectories = inputs.adapter
            job.trainableParamsPath = inputs.trainableParams
            job.context = inputs.context
            job.group = group
            job.tensorTypes = tensorType
            job.compressionLevel = compress ? 19 : nil
            job.imatrix = imatrix
            job.force = force
            if let t = threads { job.threads = t }
            let progress = ProgressLine(label: "quantize", quiet: json)
            let toGGUF = output.lowercased().hasSuffix(".gguf")
            var exported: GGUFExporter.Report?
            let report: QuantizeReport
            if toGGUF {
                (report, exported) = try SKMConverter(job: job).runToGGUF { done, total, name in
                    progress.update(done: done, total: total, detail: name)
                }
            } else {
                report = try SKMConverter(job: job).run { done, total, name in
                    progress.update(done: done, total: total, detail: name)
                }
            }
            progress.finish()
            for w in report.warnings { eprint("warning: \(w)") }
            if json {
                let d: [String: Any] = [
                    "output": output, "file_bytes": report.fileBytes, "parameters": report.parameters,
                    "bits_per_weight": report.bitsPerWeight, "seconds": report.seconds,
                    "peak_rss_bytes": report.peakResidentBytes as Any, "lora_modules_merged": report.loraModulesMerged,
                    "fine_tune_delta_kept": report.deltaKept as Any, "fine_tune_delta_kept_layers": report.deltaKeptLayers as Any,
                    "fine_tune_delta_kept_embeddings": report.deltaKeptEmbeddings as Any, "imatrix_tensors": report.imatrixTensors,
                    "carried_over_tensors": report.carriedTensors,
                    "gguf": exported.map { ["file_bytes": $0.fileBytes, "types": $0.types, "file_type": $0.fileType] as [String: Any] } as Any,
                    "types": report.summaries.map { s -> [String: Any] in
                        ["type": s.type.userName, "group": s.group, "tensors": s.tensors, "parameters": s.parameters,
                         "raw_bytes": s.rawBytes, "stored_bytes": s.storedBytes, "bits_per_weight": s.bitsPerWeight,
                         "rmse": s.rmse, "relative_rmse": s.relativeRMSE]
                    },
                ]
                print(try JSONWriter.string(d))
                return
            }
            print("type       group  tensors  parameters      stored      bpw   rms error  rel. error" + (compress ? "  zstd saved" : ""))
            for s in report.summaries {
                var line = s.type.userName.padding(toLength: 9, withPad: " ", startingAt: 0)
                line += String(format: "  %5d  %7d  %10d  %10@  %7.3f  %10.3e  %10.3e", s.group, s.tensors, s.parameters,
                               formatBytes(s.storedBytes), s.bitsPerWeight, s.rmse, s.relativeRMSE)
                if compress { line += String(format: "  %9.1f%%", 100 * (1 - Double(s.storedBytes) / Double(max(1, s.rawBytes)))) }
                print(line)
            }
            if !report.carriedTensors.isEmpty {
                print("carried over from the GGUF bit for bit (same values, not re-quantized): \(report.carriedTensors.count) tensors")
            }
            if report.deltaKept != nil {
                let parts = [("layer matrices", report.deltaKeptLayers), ("embedding and head", report.deltaKeptEmbeddings)]
                    .compactMap { n, v in v.map { String(format: "%@ %.1f%%", n, 100 * $0) } }
                print("the fine-tune's change to the weights kept after quantization: " + parts.joined(separator: ", "))
            }
            if let g = exported {
                let types = g.types.sorted { $0.key < $1.key }.map { "\($1) \($0)" }.joined(separator: ", ")
                print("written as GGUF (\(types); file type \(g.fileType)), \(formatBytes(g.fileBytes))")
            }
            print(String(format: "%@: %@, %d parameters, %.3f bits per weight, %.1f s, peak RSS %@", output,
                         formatBytes(report.fileBytes), report.parameters, report.bitsPerWeight, report.seconds,
                         formatBytes(report.peakResidentBytes ?? 0)))
        }
    }
}
