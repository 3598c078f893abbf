import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SKCLI
import SKCore
import SKFormat
import SKGGUF
import SKTokenizer

/// `skrun tokenize`: text to token ids and pieces, like llama.cpp's `llama-tokenize`, with the
/// tokenizer of an SKM file or of a GGUF file (a model or a vocabulary-only GGUF such as
/// llama.cpp's `models/ggml-vocab-*.gguf`).
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Token ids and pieces of a text (like llama-tokenize), with the tokenizer of an .skm or a .gguf file.")

    @Argument(help: "The .skm or .gguf file (or -m).", completion: .file(extensions: ["skm", "gguf"]))
    var modelPath: String?
    @Option(name: [.customShort("m"), .customLong("model")], help: "The .skm or .gguf file.", completion: .file(extensions: ["skm", "gguf"]))
    var modelOption: String?
    @Option(name: [.customShort("p"), .long], help: "The text.") var prompt: String?
    @Option(name: [.customShort("f"), .long], help: "A UTF-8 text file (- for standard input).", completion: .file()) var file: String?
    @Flag(name: .customLong("no-special"), help: "Do not add the model's BOS/EOS (its post-processor's template).") var noSpecial = false
    @Flag(help: "Print only the ids, as a list: [1, 2, 3].") var ids = false
    @Flag(help: "Print only the number of tokens.") var count = false
    @Flag(help: "One JSON object: ids, pieces, count.") var json = false

    func validate() throws {
        if modelPath != nil && modelOption != nil { throw ValidationError("give the model once: as an argument or with -m") }
        if modelPath == nil && modelOption == nil { throw ValidationError("give the .skm or .gguf file (as an argument or with -m)") }
        if (prompt == nil) == (file == nil) { throw ValidationError("give the text with exactly one of --prompt and --file") }
        if [ids, count, json].filter({ $0 }).count > 1 { throw ValidationError("--ids, --count and --json are alternatives") }
    }

    func run() throws {
        try reportingErrors {
            let path = modelPath ?? modelOption!
            let tokenizer = try Self.tokenizer(path)
            var text = prompt ?? ""
            if let f = file {
                let bytes: [UInt8]
                if f == "-" {
                    guard let b = StandardStreams.readInput(limit: 1 << 30) else { throw SinkKitError(.io, "standard input: unreadable or over 1 GiB") }
                    bytes = b
                } else {
                    bytes = Array(try InputFile.read(f, limit: 1 << 30))
                }
                guard let s = String(validating: bytes, as: UTF8.self) else { throw SinkKitError(.invalidArgument, "\(f) is not UTF-8 text") }
                text = s
            }
            let tokens = tokenizer.encode(text, addSpecialTokens: !noSpecial)
            if count { print(tokens.count); return }
            if ids { print("[" + tokens.map(String.init).joined(separator: ", ") + "]"); return }
            let pieces = tokens.map { tokenizer.decode([$0]) }
            if json {
                print(try JSONWriter.string(["ids": tokens, "pieces": pieces, "count": tokens.count] as [String: Any]))
                return
            }
            for (t, p) in zip(tokens, pieces) { print(String(printf: "%6d -> '%@'", t, p)) }
        }
    }

    /// The tokenizer of an SKM file (its metadata; tensors are not read) or of a GGUF file.
    static func tokenizer(_ path: String) throws -> Tokenizer {
        guard InputFile.isRegularFile(path) else { throw SinkKitError(.io, "\(path): not a regular file (expected an .skm or .gguf file)") }
        if GGUFFile.isGGUF(path) {
            let g = try GGUFFile(path: path)
            return try Tokenizer(spec: try GGUFTokenizer.spec(g))
        }
        let f = try SKMFile(path: path)
        return try Tokenizer(spec: try TokenizerSpec(metadata: f.metadata, path: path))
    }
}
