#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKCore
import SKRuntime
import SKTokenizer

/// A model loaded once, shared by any number of sessions (each with its own KV cache and
/// policy): the entry point for Swift programs that embed SinkKit, and what `skrun generate`,
/// `perplexity`, `bench`, the interactive chat and `skrun serve` are built on.
///
///     let engine = try Engine(modelPath: "smollm2-int4.skm")
///     let session = try engine.makeSession()
///     for try await event in session.stream(.chat([.init(role: "user", content: "Hi!")]), GenerationParameters(maxTokens: 64)) {
///         if case .piece(let p) = event { print(p.text, terminator: "") }
///     }
///
/// The weights are mapped read-only and never change, the tokenizer is thread-safe: an engine is
/// safe to share between tasks and threads.
public final class Engine: @unchecked Sendable {
    public let modelPath: String
    public let runtime: Runtime
    /// Worker threads a session uses by default (all cores).
    public let defaultThreads: Int

    /// A LoRA fine-tune every session applies at run time (`skrun --lora`), or nil.
    public let adapter: LoRAAdapter?

    /// The adapter at other scales, made on first use (at most `maxLoRAScales`).
    private var scaledAdapters: [Float: LoRAAdapter] = [:]
    private let scaledLock = Lock()
    public static let maxLoRAScales = 8

    /// The adapter a generation runs with: the loaded one (`loraScale` nil or equal to its scale),
    /// none (scale 0), or the loaded adapter at another scale.
    public func adapter(for p: GenerationParameters) throws -> LoRAAdapter? {
        guard let s = p.loraScale else { return adapter }
        guard let base = adapter else {
            throw SinkKitError(.invalidArgument, "lora: no LoRA adapter is loaded (start the engine with one: skrun serve --lora FILE)")
        }
        if s == 0 { return nil }
        if s == base.scale { return base }
        scaledLock.lock(); defer { scaledLock.unlock() }
        if let a = scaledAdapters[s] { return a }
        guard scaledAdapters.count < Self.maxLoRAScales else {
            throw SinkKitError(.invalidArgument, "lora: at most \(Self.maxLoRAScales) distinct adapter scales are kept; scale \(s) would be another")
        }
        let a = try LoRAAdapter(path: base.path, model: model, scale: s)
        scaledAdapters[s] = a
        return a
    }

    /// Prompts keep their activations in f32 for quantized weights (`--precise-prompts`).
    public let preciseActivations: Bool

    public init(modelPath: String, integrity: Integrity = .checkOnce, threads: Int? = nil, lora: String? = nil, loraScale: Float = 1,
                preciseActivations: Bool = false) throws {
        self.preciseActivations = preciseActivations
        self.modelPath = modelPath
        let rt = try Runtime(path: modelPath, integrity: integrity, threads: threads)
        runtime = rt
        defaultThreads = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        adapter = try lora.map { try LoRAAdapter(path: $0, model: rt.model, scale: loraScale) }
    }

    public var model: LlamaModel { runtime.model }
    public var tokenizer: Tokenizer { runtime.tokenizer }
    public var config: ModelConfig { runtime.model.config }

    /// A name for the model (the file name without `.skm`), as an API reports it.
    public var modelName: String { URL(fileURLWithPath: modelPath).deletingPathExtension().lastPathComponent }

    /// A new independent session. `context`: the positions a full cache holds (default: the
    /// trained context); a bounded policy holds its budget plus one prefill chunk whatever the length.
    public func makeSession(context: Int? = nil, attention: AttentionSettings = AttentionSettings(), threads: Int? = nil,
                            percentBase: Int? = nil) throws -> EngineSession {
        let ctx = context ?? config.trainedContext
        guard (1...Limits.maxTokens).contains(ctx) else {
            throw SinkKitError(.invalidArgument, "--ctx must be between 1 and \(Limits.maxTokens) (got \(ctx))")
        }
        let cfg = try attention.config(model: config, context: ctx, base: percentBase ?? ctx)
        try runtime.checkContextFits(cfg.policy.headCapacity.map { min($0, ctx) + cfg.chunk } ?? ctx, dtype: cfg.kvDType)
        let s = try Session(model: model, context: ctx, threads: threads ?? defaultThreads, attention: cfg)
        s.adapter = adapter
        s.preciseActivations = preciseActivations
        return EngineSession(engine: self, session: s, settings: attention)
    }

    /// Token ids of a text; `addSpecialTokens` applies the tokenizer's template (BOS).
    public func tokenize(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        tokenizer.encode(text, addSpecialTokens: addSpecialTokens)
    }

    /// A generation input's prompt token ids.
    public func tokens(for input: GenerationInput) throws -> [Int] {
        switch input {
        case .text(let s, let special): return tokenize(s, addSpecialTokens: special)
        case .chat(let messages): return tokenize(try render(messages), addSpecialTokens: false)
        case .tokens(let t): return t
        }
    }

    /// Chat messages rendered with the model's chat template (byte-identical to transformers'
    /// `apply_chat_template`).
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws -> String {
        try ChatTemplate.render(tokenizer, messages: messages.map { ["role": $0.role, "content": $0.content] },
                                addGenerationPrompt: addGenerationPrompt)
    }

    /// Stop tokens: the config's EOS ids and the tokenizer's EOS token.
    public var stopTokens: Set<Int> { runtime.stopTokens }
}

/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}
