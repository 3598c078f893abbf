import ArgumentParser
import Foundation
import SKConvert
import SKCore

/// `skconv export`: an SKM file as a GGUF file for llama.cpp, ollama and LM Studio.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an SKM model as a GGUF file (llama.cpp, ollama, LM Studio): f32, f16, and at group 32 int8/int4-sym/int4/int5-sym as Q8_0/Q4_0/Q4_1/Q5_0, without re-quantizing; with its tokenizer and chat template.")

    @Argument(help: "The .skm model file.", completion: .file(extensions: ["skm"])) var model: String
    @Option(help: "Output .gguf file.", completion: .file(extensions: ["gguf"])) var output: String
    @Flag(help: "Replace an existing output.") var force = false
    @Flag(help: "Print the summary as JSON on standard output.") var json = false

    func run() throws {
        try runReportingErrors {
            let r = try GGUFExporter.export(skm: model, output: output, force: force)
            for n in r.notes { eprint("note: \(n)") }
            if json {
                print(try JSONWriter.string(["output": output, "file_bytes": r.fileBytes, "tensors": r.tensors, "types": r.types, "file_type": r.fileType] as [String: Any]))
                return
            }
            let types = r.types.sorted { $0.key < $1.key }.map { "\($1) \($0)" }.joined(separator: ", ")
            print("\(output): \(formatBytes(r.fileBytes)), \(r.tensors) tensors (\(types)), file type \(r.fileType)")
        }
    }
}
