import ArgumentParser
import Foundation
import SKCore
import SKCLI
import SKRuntime
import SKTokenizer

@main
struct SKRun: ParsableCommand {
    static func main() { mainWithExitTable() }

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

/// Prints a library error as one line and exits with its status (`ExitStatus`); never a trap or a
/// stack trace.
func reportingErrors(_ body: () throws -> Void) throws {
    ProcessMemory.trimCodePages()
    BLASThreads.useCallerThreadOnly()
    do { try body() } catch let e as SinkKitError {
        eprint("error: \(e.message)")
        throw ExitCode(e.exitStatus.rawValue)
    }
}

struct RuntimeOptions: ParsableArguments {
    @Argument(help: "The .skm model file.")
    var model: String

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "Check every tensor checksum while loading, even for a file verified before.")
    var verify = false

    @Flag(name: .customLong("no-verify"), help: "Skip the tensor checksums (by default a file is checked in full the first time it is loaded).")
    var noVerify = false

    func validate() throws {
        try bounded(threads, 1...Limits.maxThreads, "--threads")
        if verify && noVerify { throw ValidationError("--verify and --no-verify contradict each other") }
    }

    var integrity: Integrity { verify ? .always : noVerify ? .skip : .checkOnce }
}

/// A ValidationError unless `value` lies in `range` (every number from the command line is bounded:
/// the arithmetic on it can then never overflow).
func bounded<T: BinaryInteger>(_ value: T, _ range: ClosedRange<T>, _ flag: String) throws {
    guard range.contains(value) else { throw ValidationError("\(flag) must be between \(range.lowerBound) and \(range.upperBound) (got \(value))") }
}

/// SF-Attn and KV cache policy flags, shared by generate, perplexity and bench.
struct AttentionOptions: ParsableArguments {
    @Option(help: "Attention: full or sf (SinkLoRA's shifted segments + sinks).") var attention = "full"
    @Option(name: .customLong("sf-group"), help: "SF-Attn segment size G (even; default: a quarter of the trained context).") var sfGroup: Int?
    @Option(help: "Sink tokens that every token attends to and no policy evicts.") var sinks = 4
    @Option(help: "KV cache: full, segment (default with sf), window (sinks + recent) or h2o (sinks + heavy hitters + recent).") var kv: String?
    @Option(name: .customLong("kv-budget"), help: "Slots per layer and KV head: N tokens or P% (of the prompt in generate, of --ctx in perplexity).") var kvBudget: String?
    @Option(help: "H2O recent window: N or P% (default: half of the budget after the sinks).") var recent: String?
    @Option(help: "RoPE positions for a compacted cache: auto, absolute or cache.") var positions = "auto"
    @Option(name: .customLong("prefill-chunk"), help: "Prefill chunk for bounded caches.") var prefillChunk = 256
    @Option(name: .customLong("kv-dtype"), help: "KV cache storage: f32, or f16 (half the memory).") var kvDType = "f32"

    func validate() throws {
        guard ["full", "sf"].contains(attention) else { throw ValidationError("--attention must be full or sf (got \(attention))") }
        if let k = kv, !["full", "segment", "window", "h2o"].contains(k) { throw ValidationError("--kv must be full, segment, window or h2o (got \(k))") }
        guard PositionMode(rawValue: positions) != nil else { throw ValidationError("--positions must be auto, absolute or cache (got \(positions))") }
        if let g = sfGroup {
            try bounded(g, 2...Limits.maxTokens, "--sf-group")
            guard g % 2 == 0 else { throw ValidationError("--sf-group must be an even number (got \(g))") }
        }
        try bounded(sinks, 0...Limits.maxChunk, "--sinks")
        try bounded(prefillChunk, 1...Limits.maxChunk, "--prefill-chunk")
        guard KVDType(rawValue: kvDType) != nil else { throw ValidationError("--kv-dtype must be f32 or f16 (got \(kvDType))") }
        if kv == "segment" && attention != "sf" { throw ValidationError("--kv segment needs --attention sf") }
        if (kv == "window" || kv == "h2o") && kvBudget == nil { throw ValidationError("--kv \(kv!) needs --kv-budget") }
    }

    /// Parses N or P% against `base` tokens.
    static func amount(_ s: String, of base: Int, what: String) throws -> Int {
        if s.hasSuffix("%") {
            guard let p = Double(s.dropLast()), p > 0, p <= 100 else { throw SinkKitError(.invalidArgument, "\(what) \(s): a percentage must be in (0, 100]") }
            return max(1, Int((Double(base) * p / 100).rounded()))
        }
        guard let n = Int(s), n > 0 else { throw SinkKitError(.invalidArgument, "\(what) \(s): expected a positive token count or a percentage") }
        guard n <= Limits.maxTokens else { throw SinkKitError(.invalidArgument, "\(what) \(s): at most \(Limits.maxTokens) tokens") }
        return n
    }

    /// The session's attention configuration; `base` is what percentages refer to.
    func config(model: LlamaModel, context: Int, base: Int) throws -> AttentionConfig {
        let c = model.config
        var sf: SFAttention?
        if attention == "sf" {
            let g = sfGroup ?? max(2, c.trainedContext / 4 / 2 * 2)
            guard g <= context else {
                throw SinkKitError(.invalidArgument, "--sf-group \(g) is larger than the \(context)-token context: SF-Attn needs at least one whole segment")
            }
            sf = SFAttention(groupSize: g, sinks: sinks, heads: c.numHeads)
        }
        let kind = kv ?? (sf != nil ? "segment" : "full")
        var policy: KVCachePolicy = FullCache()
        switch kind {
        case "segment": policy = SegmentCache(attention: sf!, heads: c.numHeads, kvHeads: c.numKVHeads)
        case "window", "h2o":
            let budget = try Self.amount(kvBudget!, of: base, what: "--kv-budget")
            guard budget > sinks else { throw SinkKitError(.invalidArgument, "--kv-budget \(budget) must exceed the \(sinks) sinks") }
            if kind == "window" { policy = WindowCache(budget: budget, sinks: sinks) }
            else {
                let r = try recent.map { try Self.amount($0, of: base, what: "--recent") }
                if let r, r > budget - sinks { throw SinkKitError(.invalidArgument, "--recent \(r) leaves no room in a budget of \(budget) with \(sinks) sinks") }
                policy = H2OCache(budget: budget, sinks: sinks, recent: r)
            }
        default: break
        }
        return AttentionConfig(sf: sf, policy: policy, positions: PositionMode(rawValue: positions)!, chunk: prefillChunk,
                               kvDType: KVDType(rawValue: kvDType)!)
    }

    var isBounded: Bool { attention == "sf" || (kv != nil && kv != "full") }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate text from a prompt (the default command).")

    @OptionGroup var options: RuntimeOptions
    @OptionGroup var attn: AttentionOptions
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
        try bounded(n, 0...Limits.maxTokens, "-n")
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be ≥ 0 (got \(temperature))") }
        try bounded(topK, 0...Limits.maxVocab, "--top-k")
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1] (got \(topP))") }
        guard minP >= 0, minP <= 1 else { throw ValidationError("--min-p must be in [0, 1] (got \(minP))") }
        guard repeatPenalty > 0, repeatPenalty.isFinite else { throw ValidationError("--repeat-penalty must be > 0 (got \(repeatPenalty))") }
        if let c = ctx { try bounded(c, 1...Limits.maxTokens, "--ctx") }
        if prompt == nil && !chat { throw ValidationError("give a prompt with -p (or --chat for an interactive chat)") }
    }

    func run() throws {
        try reportingErrors {
            let rt = try Runtime(path: options.model, integrity: options.integrity)
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
        let context = ctx ?? (attn.isBounded ? ids.count + n : min(trained, ids.count + n))
        guard attn.isBounded || ids.count < context else {
            throw SinkKitError(.invalidArgument, "the prompt has \(ids.count) tokens, more than the \(context)-token context (use --ctx, up to the trained \(trained), or a bounded --kv policy)")
        }
        let config = try attn.config(model: rt.model, context: context, base: ids.count)
        try rt.checkContextFits(config.policy.budget.map { min($0, context) + config.chunk } ?? context, dtype: config.kvDType)
        let session = try Session(model: rt.model, context: context, threads: options.threads, attention: config)
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
            if generated.count == n || (session.context.map { session.position >= $0 } ?? false) { break }
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
    @OptionGroup var attn: AttentionOptions
    @Option(help: "UTF-8 text file.") var file: String
    @Option(help: "Window size in tokens.") var ctx = 512
    @Option(help: "Stop after K windows.") var chunks: Int?
    @Flag(help: "Print {\"ppl\":…, \"tokens\":…, …} on standard output.") var json = false
    @Option(name: .customLong("stream-chunk"), help: "With a bounded cache or sf: score this many tokens per decode step (1: exactly generation's path).") var streamChunk = 1

    func validate() throws {
        try bounded(ctx, 4...Limits.maxTokens, "--ctx")
        if let c = chunks { try bounded(c, 1...Limits.maxTokens, "--chunks") }
        try bounded(streamChunk, 1...Limits.maxChunk, "--stream-chunk")
    }

    func run() throws {
        try reportingErrors {
            let data = try InputFile.read(file, limit: 1 << 30)
            guard let text = String(data: data, encoding: .utf8) else {
                throw SinkKitError(.invalidArgument, "\(file) is not UTF-8 text")
            }
            let rt = try Runtime(path: options.model, integrity: options.integrity)
            let tokens = rt.tokenizer.encode(text, addSpecialTokens: true)
            let config = try attn.config(model: rt.model, context: ctx, base: ctx)
            try rt.checkContextFits(ctx, dtype: config.kvDType)
            let session = try Session(model: rt.model, context: ctx, threads: options.threads, attention: config)
            let tty = isatty(STDERR_FILENO) != 0
            let stream = attn.isBounded ? max(1, streamChunk) : nil
            let r = try PerplexityRunner.run(session: session, tokens: tokens, ctx: ctx, maxChunks: chunks, bos: rt.addsBOS ? rt.tokenizer.bosId : nil,
                                             streamChunk: stream) { c, total, ppl in
                if tty { eprint(String(format: "\r\u{1B}[2K[%d/%d] ppl %.4f", c, total, ppl), terminator: "") }
            }
            if tty { eprint("") }
            if json {
                var d: [String: Any] = ["ppl": r.ppl, "tokens": r.tokens, "chunks": r.chunks, "ctx": r.ctx, "nll": r.nll,
                                        "seconds": r.seconds, "text_tokens": tokens.count, "threads": options.threads,
                                        "kernels": session.kernelName, "attention": attn.attention, "kv": config.policy.name,
                                        "positions": attn.positions, "scoring": stream.map { "stream, \($0) token(s) per decode step" } ?? "batch"]
                if let b = config.policy.budget { d["kv_budget"] = b }
                if let sf = config.sf { d["sf_group"] = sf.groupSize; d["sinks"] = sf.sinks }
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
    @OptionGroup var attn: AttentionOptions
    @Option(name: .customLong("prompt-tokens"), help: "Prompt length.") var promptTokens = 512
    @Option(name: .customLong("gen-tokens"), help: "Tokens to generate (greedy).") var genTokens = 128
    @Flag(help: "Print JSON.") var json = false
    @Option(name: .customLong("report-every"), help: "Every N generated tokens, print a JSON line with resident and KV memory to stderr.") var reportEvery: Int?

    func validate() throws {
        if let r = reportEvery { try bounded(r, 1...Limits.maxTokens, "--report-every") }
        try bounded(promptTokens, 1...Limits.maxTokens, "--prompt-tokens")
        try bounded(genTokens, 0...Limits.maxTokens, "--gen-tokens")
    }

    func run() throws {
        try reportingErrors {
            let t0 = Date()
            let rt = try Runtime(path: options.model, integrity: options.integrity)
            let loadSeconds = Date().timeIntervalSince(t0)
            let ctx = promptTokens + genTokens
            let config = try attn.config(model: rt.model, context: ctx, base: promptTokens)
            try rt.checkContextFits(config.policy.budget.map { min($0, ctx) + config.chunk } ?? ctx, dtype: config.kvDType)
            let session = try Session(model: rt.model, context: ctx, threads: options.threads, attention: config)
            var r = Sampler(seed: 1)
            let vocab = rt.model.config.vocabSize
            let prompt = (0..<promptTokens).map { _ in Int(r.nextUniformPublic() * Double(vocab - 1)) }
            let t1 = Date()
            var logits = try session.forward(prompt, logitsFor: [promptTokens - 1])
            let pp = Date().timeIntervalSince(t1)
            let t2 = Date()
            for g in 0..<genTokens {
                logits = try session.forward([Sampler.argmax(logits[...])], logitsFor: [0])
                if let every = reportEvery, (g + 1) % every == 0 {
                    eprint("{\"generated\":\(g + 1),\"rss_bytes\":\(ProcessMemory.residentBytes() ?? 0),\"kv_used_bytes\":\(session.cache.usedBytes),\"kv_allocated_bytes\":\(session.cache.bytes),\"seconds\":\(Date().timeIntervalSince(t2))}")
                }
            }
            let tg = Date().timeIntervalSince(t2)
            let d: [String: Any] = [
                "prompt_tokens": promptTokens, "gen_tokens": genTokens,
                "prompt_tokens_per_s": Double(promptTokens) / pp, "gen_tokens_per_s": genTokens == 0 ? 0.0 : Double(genTokens) / tg,
                "load_seconds": loadSeconds, "time_to_first_token_s": loadSeconds + pp,
                "peak_rss_bytes": ProcessMemory.peakResidentBytes() ?? 0, "kv_cache_bytes": session.cache.bytes,
                "kv_used_bytes": session.cache.usedBytes, "attention": attn.attention, "kv": session.attention.policy.name,
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
