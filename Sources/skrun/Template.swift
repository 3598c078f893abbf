import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SKCLI
import SKCore
import SKTokenizer

/// `skrun template`: the prompt a chat template makes of a conversation, exactly as `chat` and the
/// server feed it to the model (transformers' `apply_chat_template(..., tokenize=False)`), from an
/// .skm/.gguf file's template or a template file.
struct Template: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render a chat template for a conversation (what chat and serve feed the model).")

    @Argument(help: "The .skm or .gguf file whose chat template to use (or -m).", completion: .file(extensions: ["skm", "gguf"]))
    var modelPath: String?
    @Option(name: [.customShort("m"), .customLong("model")], help: "The .skm or .gguf file.", completion: .file(extensions: ["skm", "gguf"]))
    var modelOption: String?
    @Option(name: .customLong("template"), help: "A Jinja chat template file instead of a model's.", completion: .file())
    var templateFile: String?
    @Option(help: "bos_token for --template.") var bos = ""
    @Option(help: "eos_token for --template.") var eos = ""
    @Option(help: "The conversation: a JSON file (- for standard input) holding a list of {\"role\", \"content\"} messages.", completion: .file(extensions: ["json"]))
    var messages: String
    @Flag(name: .customLong("no-generation-prompt"), help: "Do not end with the assistant's turn header (add_generation_prompt false).")
    var noGenerationPrompt = false

    func validate() throws {
        let sources = [modelPath, modelOption, templateFile].compactMap { $0 }
        guard sources.count == 1 else { throw ValidationError("give exactly one of a model file (argument or -m) and --template") }
        if templateFile == nil && (!bos.isEmpty || !eos.isEmpty) { throw ValidationError("--bos and --eos apply to --template (a model has its own)") }
    }

    func run() throws {
        try reportingErrors {
            let bytes: [UInt8]
            if messages == "-" {
                guard let b = StandardStreams.readInput(limit: Limits.maxJSONFileBytes) else { throw SinkKitError(.io, "standard input: unreadable or too large") }
                bytes = b
            } else {
                bytes = Array(try InputFile.read(messages, limit: Limits.maxJSONFileBytes))
            }
            let conversation = try Self.parse(bytes, path: messages == "-" ? "standard input" : messages)
            let rendered: String
            if let t = templateFile {
                let data = try InputFile.read(t, limit: Limits.maxJSONFileBytes)
                guard let text = String(validating: Array(data), as: UTF8.self) else { throw SinkKitError(.invalidArgument, "\(t) is not UTF-8 text") }
                rendered = try ChatTemplate.render(template: text, messages: conversation, addGenerationPrompt: !noGenerationPrompt, bosToken: bos, eosToken: eos)
            } else {
                let tok = try Tokenize.tokenizer(modelPath ?? modelOption!)
                rendered = try ChatTemplate.render(tok, messages: conversation, addGenerationPrompt: !noGenerationPrompt)
            }
            print(rendered, terminator: "")
        }
    }

    /// A JSON list of messages, each an object of string fields (role, content, …).
    static func parse(_ bytes: [UInt8], path: String) throws -> [[String: String]] {
        guard let list = try StrictJSON.parse(Data(bytes), path: path) as? [Any] else {
            throw SinkKitError(.invalidArgument, "\(path): expected a JSON list of messages ([{\"role\": \"user\", \"content\": \"…\"}])")
        }
        return try list.enumerated().map { i, m in
            guard let d = m as? [String: Any], d["role"] is String else {
                throw SinkKitError(.invalidArgument, "\(path): message \(i) is not an object with a string \"role\"")
            }
            var out: [String: String] = [:]
            for (k, v) in d {
                guard let s = v as? String else { throw SinkKitError(.invalidArgument, "\(path): message \(i) field \(k) is not a string") }
                out[k] = s
            }
            return out
        }
    }
}
