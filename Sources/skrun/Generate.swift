import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKCore
import SKEngine
import SKRuntime

/// Sampling flags, with llama.cpp's spellings (`--temp`, `-s`) as aliases.
struct SamplingOptions: ParsableArguments {
    @Option(name: .short, help: "Tokens to generate (-1: until the end-of-sequence token or a full context; 0: none).")
    var n = 128
    @Option(name: [.customLong("temperature"), .customLong("temp")], help: "Temperature; 0 is greedy.") var temperature: Float = 0.8
    @Option(name: .customLong("top-k"), help: "Keep the K most likely tokens (0: all).") var topK = 40
    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass (0, 1].") var topP: Float = 0.95
    @Option(name: .customLong("min-p"), help: "Drop tokens below P × the best token's probability [0, 1].") var minP: Float = 0.05
    @Option(name: .customLong("repeat-penalty"), help: "Penalty for the last 64 tokens (1: none).") var repeatPenalty: Float = 1.0
    @Option(name: [.customShort("s"), .long], help: "Random seed.") var seed: UInt64 = 42
    @Option(help: "Stop before this string (repeatable).") var stop: [String] = []
    @Flag(name: .customLong("ignore-eos"), help: "Keep generating past the end-of-sequence token.") var ignoreEOS = false

    func validate() throws {
        try bounded(n, -1...Limits.maxTokens, "-n")
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be ≥ 0 (got \(temperature))") }
        try bounded(topK, 0...Limits.maxVocab, "--top-k")
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1] (got \(topP))") }
        guard minP >= 0, minP <= 1 else { throw ValidationError("--min-p must be in [0, 1] (got \(minP))") }
        guard repeatPenalty > 0, repeatPenalty.isFinite else { throw ValidationError("--repeat-penalty must be > 0 (got \(repeatPenalty))") }
        if stop.contains("") { throw ValidationError("--stop must not be empty") }
        if n == -1 && ignoreEOS { throw ValidationError("-n -1 with --ignore-eos would never stop: give a token count") }
    }

    var parameters: GenerationParameters {
        GenerationParameters(maxTokens: n < 0 ? nil : n, temperature: temperature, topK: topK, topP: topP, minP: minP,
                             repeatPenalty: repeatPenalty, seed: seed, stop: stop, ignoreEOS: ignoreEOS)
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate text from a prompt, or chat (the default command).")

    @OptionGroup var options: RuntimeOptions
    @OptionGroup var attn: AttentionOptions
    @OptionGroup var sampling: SamplingOptions
    @Option(name: .shortAndLong, help: "The prompt; - reads it from standard input (with --chat and no prompt: an interactive chat).")
    var prompt: String?
    @Option(name: [.customShort("f"), .customLong("file")], help: "Read the prompt from this file.", completion: .file())
    var file: String?
    @Option(name: [.customShort("c"), .customLong("ctx")], help: "Context (KV cache) size in tokens (default: prompt + n, at most the trained context; in a chat: the trained context).")
    var ctx: Int?
    @Flag(help: "Apply the model's chat template.") var chat = false
    @Option(help: "System message for --chat.") var system: String?
    @Flag(help: "Print one JSON object (text, token counts, timings, stop reason) instead of streaming the text.") var json = false

    func validate() throws {
        if let c = ctx { try bounded(c, 1...Limits.maxTokens, "--ctx") }
        if prompt != nil && file != nil { throw ValidationError("give the prompt once: -p or -f") }
        if prompt == nil && file == nil && !chat { throw ValidationError("give a prompt with -p (or -f FILE, or --chat for an interactive chat)") }
        if system != nil && !chat { throw ValidationError("--system applies to --chat") }
        if json && chat && prompt == nil && file == nil { throw ValidationError("--json needs a prompt (-p or -f), not an interactive chat") }
    }

    func run() throws {
        try reportingErrors {
            let engine = try options.engine()
            let settings = try attn.settings()
            if chat && prompt == nil && file == nil {
                try Chat(engine: engine, settings: settings, ctx: ctx, sampling: sampling.parameters, system: system).run()
                return
            }
            let text = try promptText()
            let input: GenerationInput = chat ? .chat(messages(text)) : .text(text, addSpecialTokens: true)
            let ids = try engine.tokens(for: input)
            let trained = engine.config.trainedContext
            let wanted = sampling.n < 0 ? trained : ids.count + sampling.n
            let context = ctx ?? (settings.isBounded ? max(1, wanted) : min(trained, max(ids.count + (sampling.n == 0 ? 0 : 1), wanted)))
            let real = try engine.makeSession(context: context, attention: settings, percentBase: ids.count)
            let r = try real.generate(.tokens(ids), sampling.parameters) { piece in
                if !json { print(piece.text, terminator: ""); fflush(stdout) }
                return true
            }
            if json {
                let d: [String: Any] = [
                    "text": r.text, "prompt_tokens": r.promptTokens, "generated_tokens": r.generatedTokens,
                    "stop_reason": r.stopReason.rawValue, "prompt_seconds": r.promptSeconds, "generation_seconds": r.generationSeconds,
                    "prompt_tokens_per_s": Double(r.promptTokens) / max(r.promptSeconds, 1e-9),
                    "generation_tokens_per_s": Double(r.generatedTokens) / max(r.generationSeconds, 1e-9),
                    "kernels": real.session.kernelName, "threads": options.threads, "context": context,
                ]
                print(try JSONWriter.string(d))
                return
            }
            print("")
            if r.stopReason == .contextFull {
                eprint("[stopped: the \(context)-token context is full (raise --ctx, up to the trained \(trained), or use a bounded --kv policy)]")
            }
            eprint(String(printf: "[prompt: %d tokens, %.1f tok/s | generation: %d tokens, %.1f tok/s | %@ kernels, %d threads]",
                          r.promptTokens, Double(r.promptTokens) / max(r.promptSeconds, 1e-9), r.generatedTokens,
                          Double(r.generatedTokens) / max(r.generationSeconds, 1e-9), real.session.kernelName, options.threads))
        }
    }

    /// -p TEXT, -p - (standard input) or -f FILE.
    func promptText() throws -> String {
        if let f = file { return String(decoding: try InputFile.read(f, limit: 1 << 30), as: UTF8.self) }
        if prompt == "-" {
            guard let bytes = StandardStreams.readInput(limit: 1 << 30) else {
                throw SinkKitError(.io, "-p -: standard input could not be read, or holds more than 1 GiB")
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        return prompt ?? ""
    }

    func messages(_ user: String) -> [ChatMessage] {
        (system.map { [ChatMessage(role: "system", content: $0)] } ?? []) + [ChatMessage(role: "user", content: user)]
    }
}
