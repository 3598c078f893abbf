import ArgumentParser
import Foundation
import SKCore
import SKRuntime
import SKTokenizer

@main
struct SKRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skrun",
        abstract: "Run an SKM model on the CPU: generate text, measure perplexity, benchmark.",
        version: "0.1.0",
        subcommands: [Generate.self, Perplexity.self, Bench.self],
        defaultSubcommand: Generate.self)
}

func eprint(_ s: String, terminator: String = "\n") {
    FileHandle.standardError.write(Data((s + terminator).utf8))
}

/// Prints a library error as one line and exits non-zero; never a trap or a stack trace.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as SinkKitError {
        eprint("error: \(e.message)")
        throw ExitCode(e.kind == .invalidArgument ? 2 : 1)
    }
}

struct RuntimeOptions: ParsableArguments {
    @Argument(help: "The .skm model file.")
    var model: String

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "Check every tensor checksum while loading.")
    var verify = false

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1 (got \(threads))") }
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate text from a prompt (the default command).")

    @OptionGroup var options: RuntimeOptions
    @Option(name: .shortAndLong, help: "The prompt (with --chat and no prompt: an interactive chat).")
    var prompt: String?
    @Option(name: .short, help: "Tokens to generate.")
    var n = 128
    @Option(help: "Temperature; 0 is greedy.") var temperature: Float = 0.8
    @Option(name: .customLong("top-k"), help: "Keep the K most likely tokens (0: all).") var topK = 40
    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass (0, 1].") var topP: Float = 0.95
    @Option(name: .customLong("min-p"), help: "Drop tokens below P × the best token's probability [0, 1].") var minP: Float = 0.05
    @Option(name: .customLong("repeat-penalty"), help: "Penalty for the last 64 tokens (1: none).") var repeatPenalty: Float = 1.0
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Option(help: "Context (KV cache) size in tokens (default: prompt + n, at most the trained context).") var ctx: Int?
    @Flag(name: .customLong("ignore-eos"), help: "Keep generating past the end-of-sequence token.") var ignoreEOS = false
    @Flag(help: "Apply the model's chat template.") var chat = false
    @Option(help: "System message for --chat.") var system: String?

    func validate() throws {
        guard n >= 0 else { throw ValidationError("-n must be non-negative") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be ≥ 0 (got \(temperature))") }
        guard topK >= 0 else { throw ValidationError("--top-k must be ≥ 0 (got \(topK))") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1] (got \(topP))") }
        guard minP >= 0, minP <= 1 else { throw ValidationError("--min-p must be in [0, 1] (got \(minP))") }
        guard repeatPenalty > 0, repeatPenalty.isFinite else { throw ValidationError("--repeat-penalty must be > 0 (got \(repeatPenalty))") }
        if let c = ctx, c < 1 { throw ValidationError("--ctx must be positive (got \(c))") }
        if prompt == nil && !chat { throw ValidationError("give a prompt with -p (or --chat for an interactive chat)") }
    }

    func run() throws {
        try reportingErrors {
            let rt = try Runtime(path: options.model, verify: options.verify)
            if chat && prompt == nil {
                try interactive(rt)
                return
            }
            let text = try chat ? ChatTemplate.render(rt.tokenizer, messages: messages(prompt!), addGenerationPrompt: true) : prompt!
            let ids = rt.tokenizer.encode(text, addSpecialTokens: !chat)
            _ = try generate(rt, ids, out: { print($0, terminator: ""); fflush(stdout) })
            print("")
        }
    }

    func messages(_ user: String, history: [(String, String)] = []) -> [[String: String]] {
        var m: [[String: String]] = []
        if let s = system { m.append(["role": "system", "content": s]) }
        for (u, a) in history { m += [["role": "user", "content": u], ["role": "assistant", "content": a]] }
        m.append(["role": "user", "content": user])
        return m
    }

    func interactive(_ rt: Runtime) throws {
        var history: [(String, String)] = []
        while true {
            eprint("> ", terminator: "")
            guard let line = readLine(), !line.isEmpty else { return }
            let text = try ChatTemplate.render(rt.tokenizer, messages: messages(line, history: history), addGenerationPrompt: true)
            var reply = ""
            _ = try generate(rt, rt.tokenizer.encode(text), out: { reply += $0; print($0, terminator: ""); fflush(stdout) })
            print("")
            history.append((line, reply))
        }
    }

    /// Streams the continuation of `ids`; returns the generated token ids.
    func generate(_ rt: Runtime, _ ids: [Int], out: (String) -> Void) throws -> [Int] {
        guard !ids.isEmpty else { throw SinkKitError(.invalidArgument, "the prompt is empty after tokenization") }
        let trained = rt.model.config.trainedContext
        let context = ctx ?? min(trained, ids.count + n)
        guard ids.count < context else {
            throw SinkKitError(.invalidArgument, "the prompt has \(ids.count) tokens, more than the \(context)-token context (use --ctx, up to the trained \(trained))")
        }
        try rt.checkContextFits(context)
        let session = try Session(model: rt.model, context: context, threads: options.threads)
        var sampler = Sampler(seed: seed)
        sampler.temperature = temperature; sampler.topK = topK; sampler.topP = topP; sampler.minP = minP
        sampler.repeatPenalty = repeatPenalty
        let stops = rt.stopTokens
        var decoder = StreamDecoder(tokenizer: rt.tokenizer, skipSpecialTokens: true)
        let t0 = Date()
        var logits = try session.forward(ids, logitsFor: [ids.count - 1])
        let promptSeconds = Date().timeIntervalSince(t0)
        var history = ids, generated: [Int] = []
        let t1 = Date()
        while generated.count < n {
            let next = sampler.sample(logits[...], history: history)
            if !ignoreEOS && stops.contains(next) { break }
            generated.append(next)
            history.append(next)
            out(decoder.push(next))
            if generated.count == n || session.position >= context { break }
            logits = try session.forward([next], logitsFor: [0])
        }
        out(decoder.flush())
        let genSeconds = Date().timeIntervalSince(t1)
        eprint(String(format: "\n[prompt: %d tokens, %.1f tok/s | generation: %d tokens, %.1f tok/s | %@ kernels, %d threads]",
                      ids.count, Double(ids.count) / max(promptSeconds, 1e-9), generated.count,
                      Double(generated.count) / max(genSeconds, 1e-9), session.kernelName, options.threads))
        return generated
    }
}

struct Perplexity: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Perplexity of a text file under llama.cpp's llama-perplexity protocol.")

    @OptionGroup var options: RuntimeOptions
    @Option(help: "UTF-8 text file.") var file: String
    @Option(help: "Window size in tokens.") var ctx = 512
    @Option(help: "Stop after K windows.") var chunks: Int?
    @Flag(help: "Print {\"ppl\":…, \"tokens\":…, …} on standard output.") var json = false

    func validate() throws {
        guard ctx >= 4 else { throw ValidationError("--ctx must be at least 4 (got \(ctx))") }
        if let c = chunks, c < 1 { throw ValidationError("--chunks must be positive") }
    }

    func run() throws {
        try reportingErrors {
            guard let data = FileManager.default.contents(atPath: file) else { throw SinkKitError(.io, "\(file): cannot read") }
            guard let text = String(data: data, encoding: .utf8) else {
                throw SinkKitError(.invalidArgument, "\(file) is not UTF-8 text")
            }
            let rt = try Runtime(path: options.model, verify: options.verify)
            try rt.checkContextFits(ctx)
            let tokens = rt.tokenizer.encode(text, addSpecialTokens: true)
            let session = try Session(model: rt.model, context: ctx, threads: options.threads)
            let tty = isatty(STDERR_FILENO) != 0
            let r = try PerplexityRunner.run(session: session, tokens: tokens, ctx: ctx, maxChunks: chunks, bos: rt.addsBOS ? rt.tokenizer.bosId : nil) { c, total, ppl in
                if tty { eprint(String(format: "\r\u{1B}[2K[%d/%d] ppl %.4f", c, total, ppl), terminator: "") }
            }
            if tty { eprint("") }
            if json {
                let d: [String: Any] = ["ppl": r.ppl, "tokens": r.tokens, "chunks": r.chunks, "ctx": r.ctx, "nll": r.nll,
                                        "seconds": r.seconds, "text_tokens": tokens.count, "threads": options.threads,
                                        "kernels": session.kernelName]
                print(String(decoding: try JSONSerialization.data(withJSONObject: d, options: [.sortedKeys]), as: UTF8.self))
            } else {
                print(String(format: "perplexity %.4f over %d scored tokens (%d windows of %d, %.1f s)", r.ppl, r.tokens, r.chunks, r.ctx, r.seconds))
            }
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Prompt-processing and generation speed, and peak memory.")

    @OptionGroup var options: RuntimeOptions
    @Option(name: .customLong("prompt-tokens"), help: "Prompt length.") var promptTokens = 512
    @Option(name: .customLong("gen-tokens"), help: "Tokens to generate (greedy).") var genTokens = 128
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard promptTokens >= 1, genTokens >= 0 else { throw ValidationError("--prompt-tokens must be ≥ 1 and --gen-tokens ≥ 0") }
    }

    func run() throws {
        try reportingErrors {
            let t0 = Date()
            let rt = try Runtime(path: options.model, verify: options.verify)
            let loadSeconds = Date().timeIntervalSince(t0)
            let ctx = promptTokens + genTokens
            try rt.checkContextFits(ctx)
            let session = try Session(model: rt.model, context: ctx, threads: options.threads)
            var r = Sampler(seed: 1)
            let vocab = rt.model.config.vocabSize
            let prompt = (0..<promptTokens).map { _ in Int(r.nextUniformPublic() * Double(vocab - 1)) }
            let t1 = Date()
            var logits = try session.forward(prompt, logitsFor: [promptTokens - 1])
            let pp = Date().timeIntervalSince(t1)
            let t2 = Date()
            for _ in 0..<genTokens {
                logits = try session.forward([Sampler.argmax(logits[...])], logitsFor: [0])
            }
            let tg = Date().timeIntervalSince(t2)
            let d: [String: Any] = [
                "prompt_tokens": promptTokens, "gen_tokens": genTokens,
                "prompt_tokens_per_s": Double(promptTokens) / pp, "gen_tokens_per_s": genTokens == 0 ? 0 : Double(genTokens) / tg,
                "load_seconds": loadSeconds, "time_to_first_token_s": loadSeconds + pp,
                "peak_rss_bytes": ProcessMemory.peakResidentBytes() ?? 0, "kv_cache_bytes": session.cache.bytes,
                "threads": options.threads, "kernels": session.kernelName, "model_bytes": rt.model.file.file.size,
            ]
            if json {
                print(String(decoding: try JSONSerialization.data(withJSONObject: d, options: [.sortedKeys]), as: UTF8.self))
            } else {
                print(String(format: "prompt %d tokens: %.1f tok/s | generation %d tokens: %.1f tok/s | load %.2f s | peak RSS %.1f MB | %@, %d threads",
                             promptTokens, d["prompt_tokens_per_s"] as! Double, genTokens, d["gen_tokens_per_s"] as! Double, loadSeconds,
                             Double(d["peak_rss_bytes"] as! Int) / 1e6, session.kernelName, options.threads))
            }
        }
    }
}
