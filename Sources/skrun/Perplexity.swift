import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKCLI
import SKCore
import SKEngine
import SKRuntime

struct Perplexity: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Perplexity of a text file under llama.cpp's llama-perplexity protocol.")

    @OptionGroup var options: RuntimeOptions
    @OptionGroup var attn: AttentionOptions
    @Option(name: [.customShort("f"), .long], help: "UTF-8 text file.") var file: String
    @Option(name: [.customShort("c"), .long], help: "Window size in tokens.") var ctx = 512
    @Option(help: "Stop after K windows.") var chunks: Int?
    @Flag(help: "Print {\"ppl\":…, \"tokens\":…, …} on standard output.") var json = false
    @Option(name: .customLong("stream-chunk"), help: "With a bounded cache or sf: score this many tokens per decode step (1: exactly generation's path).") var streamChunk = 1
    @Option(name: .customLong("kl-base"), help: "A reference .skm of the same model (e.g. its f32 file): also report the KL divergence from it and top-1 agreement.") var klBase: String?

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
            let engine = try options.engine()
            let settings = try attn.settings()
            let tokens = engine.tokenize(text, addSpecialTokens: true)
            let es = try engine.makeSession(context: ctx, attention: settings)
            let session = es.session
            let progress = ProgressLine(label: "perplexity")
            let stream = settings.isBounded ? max(1, streamChunk) : nil
            var base: Session?
            if let path = klBase {
                let b = try Engine(modelPath: path, integrity: options.integrity, threads: options.threads)
                guard b.tokenize(text, addSpecialTokens: true) == tokens else {
                    throw SinkKitError(.invalidArgument, "--kl-base \(path) tokenizes the text differently: not the same model")
                }
                base = try b.makeSession(context: ctx).session
            }
            let r = try PerplexityRunner.run(session: session, tokens: tokens, ctx: ctx, maxChunks: chunks,
                                             bos: engine.runtime.addsBOS ? engine.tokenizer.bosId : nil, streamChunk: stream, base: base) { c, total, ppl in
                progress.update(done: c, total: total, detail: String(printf: "ppl %.4f", ppl))
            }
            progress.finish()
            if json {
                var d: [String: Any] = ["ppl": r.ppl, "tokens": r.tokens, "chunks": r.chunks, "ctx": r.ctx, "nll": r.nll,
                                        "seconds": r.seconds, "text_tokens": tokens.count, "threads": options.threads,
                                        "kernels": session.kernelName, "attention": attn.attention, "kv": session.attention.policy.name,
                                        "positions": attn.positions, "scoring": stream.map { "stream, \($0) token(s) per decode step" } ?? "batch"]
                if let b = session.attention.policy.budget { d["kv_budget"] = b }
                d["kv_dtype"] = session.cache.dtype.rawValue
                // bytes held beside the slots at the end (kivi4: group scales, unsealed keys; their peak, as they never shrink)
                d["kv_side_bytes"] = session.cache.sideBytes
                if let kl = r.klMean {
                    d["kl_mean"] = kl; d["kl_p99"] = r.klP99!; d["top1_agreement"] = r.top1Agreement!; d["base_ppl"] = r.basePPL!
                }
                if let sf = session.attention.sf { d["sf_group"] = sf.groupSize; d["sinks"] = sf.sinks }
                print(try JSONWriter.string(d))
            } else {
                print(String(printf: "perplexity %.4f over %d scored tokens (%d windows of %d, %.1f s)", r.ppl, r.tokens, r.chunks, r.ctx, r.seconds))
                if let kl = r.klMean {
                    print(String(printf: "against the base (perplexity %.4f): mean KL divergence %.5f nats (p99 %.4f), same top token %.2f%%",
                                 r.basePPL!, kl, r.klP99!, 100 * r.top1Agreement!))
                }
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
            let engine = try options.engine()
            let loadSeconds = Date().timeIntervalSince(t0)
            let ctx = promptTokens + genTokens
            let es = try engine.makeSession(context: ctx, attention: try attn.settings(), percentBase: promptTokens)
            let session = es.session
            let progress = ProgressLine(label: "bench")
            let r = try Benchmark.run(session: session, promptTokens: promptTokens, genTokens: genTokens, reportEvery: reportEvery) { g, elapsed in
                if let every = reportEvery, g % every == 0 {
                    eprint("{\"generated\":\(g),\"rss_bytes\":\(ProcessMemory.residentBytes() ?? 0),\"kv_used_bytes\":\(session.cache.usedBytes),\"kv_allocated_bytes\":\(session.cache.bytes),\"seconds\":\(elapsed)}")
                } else if reportEvery == nil, g % 32 == 0 || g == genTokens {
                    progress.update(done: g, total: genTokens, detail: "generated")
                }
            }
            progress.finish()
            let d: [String: Any] = [
                "prompt_tokens": promptTokens, "gen_tokens": genTokens,
                "prompt_tokens_per_s": Double(promptTokens) / r.promptSeconds, "gen_tokens_per_s": genTokens == 0 ? 0.0 : Double(genTokens) / r.generationSeconds,
                "load_seconds": loadSeconds, "time_to_first_token_s": loadSeconds + r.promptSeconds,
                "peak_rss_bytes": ProcessMemory.peakResidentBytes() ?? 0, "kv_cache_bytes": session.cache.bytes,
                "kv_used_bytes": session.cache.usedBytes, "attention": attn.attention, "kv": session.attention.policy.name,
                "threads": options.threads, "kernels": session.kernelName, "model_bytes": engine.model.file.file.size,
            ]
            if json {
                print(try JSONWriter.string(d))
            } else {
                print(String(printf: "prompt %d tokens: %.1f tok/s | generation %d tokens: %.1f tok/s | load %.2f s | peak RSS %.1f MB | %@, %d threads",
                             promptTokens, d["prompt_tokens_per_s"] as! Double, genTokens, d["gen_tokens_per_s"] as! Double, loadSeconds,
                             Double(d["peak_rss_bytes"] as! Int) / 1e6, session.kernelName, options.threads))
            }
        }
    }
}

