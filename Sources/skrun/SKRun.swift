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

@main
struct SKRun: ParsableCommand {
    static func main() { mainWithExitTable() }

    static let configuration = CommandConfiguration(
        commandName: "skrun",
        abstract: "Run an SKM model on the CPU: generate text, chat, serve an OpenAI-compatible API, measure perplexity, benchmark, tokenize.",
        version: SinkKitVersion.description,
        subcommands: [Generate.self, Serve.self, Perplexity.self, Bench.self, Tokenize.self, Template.self],
        defaultSubcommand: Generate.self)
}

func eprint(_ s: String, terminator: String = "\n") {
    StandardStreams.error(s + terminator)
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

/// A ValidationError unless `value` lies in `range` (every number from the command line is bounded:
/// the arithmetic on it can then never overflow).
func bounded<T: BinaryInteger>(_ value: T, _ range: ClosedRange<T>, _ flag: String) throws {
    guard range.contains(value) else { throw ValidationError("\(flag) must be between \(range.lowerBound) and \(range.upperBound) (got \(value))") }
}

/// The model and how to run it, shared by every subcommand (llama.cpp's `-m`, `-t` spellings too).
struct RuntimeOptions: ParsableArguments {
    @Argument(help: "The .skm model file (or -m).", completion: .file(extensions: ["skm"]))
    var modelPath: String?

    @Option(name: [.customShort("m"), .customLong("model")], help: "The .skm model file.", completion: .file(extensions: ["skm"]))
    var modelOption: String?

    @Option(name: [.customShort("t"), .long], help: "Worker threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "Check every tensor checksum while loading, even for a file verified before.")
    var verify = false

    @Flag(name: .customLong("no-verify"), help: "Skip the tensor checksums (by default a file is checked in full the first time it is loaded).")
    var noVerify = false

    @Flag(name: .customLong("precise-prompts"), help: "Prompts keep activations in f32 for int8/int4 weights (int8 then answers like f32; prompts slower: about 0.56x where the CPU has AVX512-VNNI; the integer GEMM is AVX2 or VNNI, so NEON and scalar paths always do this).")
    var precisePrompts = false

    @Option(help: "A LoRA adapter file (skconv adapter) applied at run time, in f32, on top of the model.", completion: .file(extensions: ["skm"]))
    var lora: String?

    @Option(name: .customLong("lora-scale"), help: "Multiplies the adapter's delta (1: as trained).")
    var loraScale: Float = 1

    func validate() throws {
        try bounded(threads, 1...Limits.maxThreads, "--threads")
        if verify && noVerify { throw ValidationError("--verify and --no-verify contradict each other") }
        if modelPath != nil && modelOption != nil { throw ValidationError("give the model once: as an argument or with -m") }
        if modelPath == nil && modelOption == nil { throw ValidationError("give the .skm model file (as an argument or with -m)") }
        guard loraScale.isFinite, abs(loraScale) <= 100 else { throw ValidationError("--lora-scale must be finite, of magnitude at most 100 (got \(loraScale))") }
        if lora == nil && loraScale != 1 { throw ValidationError("--lora-scale applies to --lora") }
    }

    var model: String { modelPath ?? modelOption ?? "" }
    var integrity: Integrity { verify ? .always : noVerify ? .skip : .checkOnce }

    /// Loads the engine; warns when more threads than cores are asked for (they would only contend).
    func engine() throws -> Engine {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if threads > cores {
            eprint("warning: --threads \(threads) is more than the \(cores) cores: the threads will contend (usually much slower)")
        }
        return try Engine(modelPath: model, integrity: integrity, threads: threads, lora: lora, loraScale: loraScale,
                          preciseActivations: precisePrompts)
    }
}

/// SF-Attn and KV cache policy flags, shared by generate, serve, perplexity and bench.
struct AttentionOptions: ParsableArguments {
    @Option(help: "Attention: full or sf (SinkLoRA's shifted segments + sinks).", completion: .list(["full", "sf"])) var attention = "full"
    @Option(name: .customLong("sf-group"), help: "SF-Attn segment size G (even; default: a quarter of the trained context, at most the context).") var sfGroup: Int?
    @Option(help: "Sink tokens that every token attends to and no policy evicts.") var sinks = 4
    @Option(help: "KV cache: full, segment (default with sf), window (sinks + recent), h2o (sinks + heavy hitters + recent), vatp (h2o ranked by mean attention times value norm), tova (sinks + what the newest query attends to most), snapkv (compressed by the last queries' attention), pyramidkv (snapkv, more budget in lower layers) or adakv (snapkv, a layer's budget shared by its heads).", completion: .list(AttentionSettings.Cache.allCases.map(\.rawValue))) var kv: String?
    @Option(name: .customLong("kv-budget"), help: "Slots per layer and KV head: N tokens or P% (of the prompt in generate, of --ctx in perplexity).") var kvBudget: String?
    @Option(help: "H2O / VATP recent window: N or P% (default: half of the budget after the sinks).") var recent: String?
    @Option(name: .customLong("snap-window"), help: "SnapKV observation window: the last N queries score the cache (default 32, less for small budgets).") var snapWindow: Int?
    @Option(help: "RoPE positions for a compacted cache: auto, absolute or cache.", completion: .list(["auto", "absolute", "cache"])) var positions = "auto"
    @Option(name: .customLong("prefill-chunk"), help: "Prefill chunk for bounded caches.") var prefillChunk = 256
    @Option(name: .customLong("kv-dtype"), help: "KV cache storage: f32, f16 (half the memory), int8 (blocks of 32 with an f16 scale: 0.27x f32), int4 (0.14x f32), k8v4 (int8 keys, int4 values: 0.20x f32) or kivi4 (KIVI: int4 keys per channel over groups of 32 tokens, int4 values: about 0.16x f32, near k8v4's quality).", completion: .list(KVDType.allCases.map(\.rawValue))) var kvDType = "f32"

    func validate() throws {
        guard AttentionSettings.Mode(rawValue: attention) != nil else { throw ValidationError("--attention must be full or sf (got \(attention))") }
        if let k = kv, AttentionSettings.Cache(rawValue: k) == nil { throw ValidationError("--kv must be one of \(AttentionSettings.Cache.allCases.map(\.rawValue).joined(separator: ", ")) (got \(k))") }
        guard PositionMode(rawValue: positions) != nil else { throw ValidationError("--positions must be auto, absolute or cache (got \(positions))") }
        if let g = sfGroup {
            try bounded(g, 2...Limits.maxTokens, "--sf-group")
            guard g % 2 == 0 else { throw ValidationError("--sf-group must be an even number (got \(g))") }
        }
        try bounded(sinks, 0...Limits.maxChunk, "--sinks")
        try bounded(prefillChunk, 1...Limits.maxChunk, "--prefill-chunk")
        guard KVDType(rawValue: kvDType) != nil else { throw ValidationError("--kv-dtype must be f32, f16, int8, int4, k8v4 or kivi4 (got \(kvDType))") }
        do { try settings().validate() } catch let e as SinkKitError { throw ValidationError(e.message) }
    }

    func settings() throws -> AttentionSettings {
        var s = AttentionSettings()
        s.mode = AttentionSettings.Mode(rawValue: attention) ?? .full
        s.sfGroup = sfGroup
        s.sinks = sinks
        s.cache = kv.flatMap { AttentionSettings.Cache(rawValue: $0) }
        s.budget = try kvBudget.map { try AttentionSettings.Amount(parsing: $0, flag: "--kv-budget") }
        s.snapWindow = snapWindow
        s.recent = try recent.map { try AttentionSettings.Amount(parsing: $0, flag: "--recent") }
        s.positions = PositionMode(rawValue: positions) ?? .auto
        s.prefillChunk = prefillChunk
        s.kvDType = KVDType(rawValue: kvDType) ?? .f32
        return s
    }
}
