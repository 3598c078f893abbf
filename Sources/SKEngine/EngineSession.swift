import Foundation
import SKCore
import SKRuntime
import SKTokenizer

/// One conversation or stream over an engine's model: its own KV cache (and policy state), the
/// tokens the cache holds, and the generation loop (prefill, sampling, stop strings, streamed
/// text that never splits a UTF-8 character, cancellation). A prompt that extends what the cache
/// already holds (the next turn of a chat, a request repeating a cached prompt) prefills only the
/// new tokens. One generation at a time per session; sessions run concurrently.
public final class EngineSession: @unchecked Sendable {
    public let engine: Engine
    /// The low-level session (the forward pass over the cache), for perplexity and benchmarks.
    public let session: Session
    public let settings: AttentionSettings
    private let lock = NSLock()
    /// The tokens whose keys and values the cache holds, in order (for a bounded policy: every
    /// token fed, of which the cache keeps a subset).
    public private(set) var fed: [Int] = []

    init(engine: Engine, session: Session, settings: AttentionSettings) {
        self.engine = engine
        self.session = session
        self.settings = settings
    }

    /// Positions a full cache holds (nil: bounded, any length).
    public var context: Int? { session.context }

    /// Empties the cache.
    public func reset() {
        lock.lock(); defer { lock.unlock() }
        session.reset()
        fed = []
    }

    /// The prompt's token ids.
    public func tokens(for input: GenerationInput) throws -> [Int] { try engine.tokens(for: input) }

    /// How many leading prompt tokens the cache can keep for `ids` (what prompt reuse would skip).
    public func reusablePrefix(_ ids: [Int]) -> Int {
        lock.lock(); defer { lock.unlock() }
        return reusable(ids)
    }

    private func reusable(_ ids: [Int]) -> Int {
        var p = 0
        while p < fed.count && p < ids.count && fed[p] == ids[p] { p += 1 }
        if session.context == nil && p < fed.count { return 0 }   // a bounded cache cannot roll back
        return min(p, ids.count - 1)                                 // the last prompt token is fed for its logits
    }

    /// Generates from `input`; `onPiece` gets every generated token with the text it completes and
    /// returns false to stop (cancellation).
    public func generate(_ input: GenerationInput, _ p: GenerationParameters,
                         onPiece: (GeneratedPiece) -> Bool = { _ in true }) throws -> GenerationResult {
        let ids = try tokens(for: input)
        lock.lock(); defer { lock.unlock() }
        guard !ids.isEmpty else { throw SinkKitError(.invalidArgument, "the prompt is empty after tokenization") }
        if let ctx = session.context, ids.count > ctx || (ids.count == ctx && p.maxTokens != 0) {
            throw SinkKitError(.invalidArgument, "the prompt has \(ids.count) tokens, more than the \(ctx)-token context leaves room for (raise --ctx, up to the trained \(engine.config.trainedContext), or use a bounded --kv policy)")
        }
        var result = GenerationResult(text: "", tokens: [], promptTokens: ids.count, reusedTokens: 0, stopReason: .length,
                                      promptSeconds: 0, generationSeconds: 0)
        if p.maxTokens == 0 { return result }

        // Prompt reuse: keep the cached prefix, roll back (full cache) or start over (bounded).
        let keep = reusable(ids)
        if keep < fed.count {
            if session.context != nil && keep > 0 {
                try session.truncate(to: keep)
                fed.removeLast(fed.count - keep)
            } else {
                session.reset()
                fed = []
            }
        }
        result.reusedTokens = fed.count
        let t0 = Date()
        var logits = try session.forward(Array(ids[fed.count...]), logitsFor: [ids.count - fed.count - 1])
        fed = ids
        result.promptSeconds = Date().timeIntervalSince(t0)

        var sampler = Sampler(seed: p.seed)
        sampler.temperature = p.temperature; sampler.topK = p.topK; sampler.topP = p.topP; sampler.minP = p.minP
        sampler.repeatPenalty = p.repeatPenalty
        let stops = engine.stopTokens
        var decoder = StreamDecoder(tokenizer: engine.tokenizer, skipSpecialTokens: true)
        var matcher = StopMatcher(p.stop)
        var history = ids
        let t1 = Date()
        loop: while true {
            if let m = p.maxTokens, result.tokens.count >= m { result.stopReason = .length; break }
            let next = sampler.sample(logits[...], history: history)
            if !p.ignoreEOS && stops.contains(next) { result.stopReason = .eos; break }
            result.tokens.append(next)
            history.append(next)
            let (text, stopped) = matcher.push(decoder.push(next))
            result.text += text
            if !onPiece(GeneratedPiece(token: next, text: text)) { result.stopReason = .cancelled; break }
            if stopped { result.stopReason = .stop; break }
            if let m = p.maxTokens, result.tokens.count >= m { result.stopReason = .length; break }
            if let ctx = session.context, session.position >= ctx { result.stopReason = .contextFull; break }
            logits = try session.forward([next], logitsFor: [0])
            fed.append(next)
        }
        if result.stopReason != .stop && result.stopReason != .cancelled {
            let (tail, stopped) = matcher.push(decoder.flush())
            let rest = stopped ? tail : tail + matcher.flush()
            if stopped { result.stopReason = .stop }
            if !rest.isEmpty {
                result.text += rest
                _ = onPiece(GeneratedPiece(token: -1, text: rest))
            }
        }
        result.generationSeconds = Date().timeIntervalSince(t1)
        return result
    }

    /// `generate` as an asynchronous stream: `.piece` events, then one `.finished`. The work runs
    /// on a thread of its own (the forward pass is CPU-bound: it never blocks Swift's cooperative
    /// pool); when the consumer stops iterating (or its task is cancelled) the generation stops at
    /// the next token.
    public func stream(_ input: GenerationInput, _ p: GenerationParameters) -> AsyncThrowingStream<GenerationEvent, Error> {
        AsyncThrowingStream { continuation in
            let cancelled = CancelFlag()
            continuation.onTermination = { _ in cancelled.set() }
            let thread = Thread { [self] in
                do {
                    let r = try generate(input, p) { piece in
                        if cancelled.isSet { return false }
                        if case .terminated = continuation.yield(.piece(piece)) { return false }
                        return !cancelled.isSet
                    }
                    continuation.yield(.finished(r))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}

/// A flag set from any thread.
final class CancelFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
