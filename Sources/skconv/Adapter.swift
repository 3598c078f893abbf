import ArgumentParser
import Foundation
import SKConvert
import SKCore

struct AdapterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapter",
        abstract: "Write a PEFT LoRA adapter (and LongLoRA trainable params) as an SKM adapter file for skrun --lora: the fine-tune applied at run time in f32 on top of a quantized base.")

    @Option(help: "Base Hugging Face model directory the adapter was trained on.", completion: .directory) var base: String
    @Option(help: "PEFT adapter directory.", completion: .directory) var adapter: String
    @Option(name: .customLong("trainable-params"), help: "LongLoRA trainable_params.bin (embeddings, norms).") var trainableParams: String?
    @Option(name: .customLong("matrix-type"), help: "Storage of whole replacement matrices (a trained embedding, modules_to_save): f16 (default), f32 or int8.", completion: .list(["f16", "f32", "int8"]))
    var matrixType = "f16"
    @Option(help: "Output .skm adapter file.", completion: .file(extensions: ["skm"])) var output: String

    func validate() throws {
        guard ["f32", "f16", "int8"].contains(matrixType) else { throw ValidationError("--matrix-type must be f32, f16 or int8 (got \(matrixType))") }
    }
    @Flag(help: "Replace an existing output.") var force = false

    func run() throws {
        try runReportingErrors {
            let r = try AdapterExporter(baseDirectory: base, adapterDirectory: adapter, trainableParamsPath: trainableParams,
                                        output: output, force: force, matrixType: QuantType(userName: matrixType)!).run()
            for w in r.warnings { eprint("warning: \(w)") }
            eprint("\(output): \(r.modules) LoRA modules, \(r.replaced) replaced tensors, \(formatBytes(r.fileBytes))")
        }
    }
}
