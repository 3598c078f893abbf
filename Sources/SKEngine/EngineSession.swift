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
    private let lock = Lock()
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

    /// How many leading prompt tokens the cache can keep for `ids` (what prompt reuse would skip);
    /// none when the cache was computed with another adapter than `adapter`.
    public func reusablePrefix(_ ids: [Int], adapter: LoRAAdapter?) -> Int {
        lock.lock(); defer { lock.unlock() }
        return adapter === session.adapter ? reusable(ids) : 0
    }

    private func reusable(_ ids: [Int]) -> Int {
        guard !ids.isEmpty else { return 0 }
        var p = 0
        while p < fed.count && p < ids.count && fed[p] == ids[p] { p += 1 }
        if session.context == nil && p < fed.count { return 0 }   // a bounded cache cannot roll back
        let keep = min(p, ids.count - 1)                             // the last prompt token is fed for its logits
        // where the cache continues as a fresh one would (kivi4: a group boundary)
        return keep < fed.count ? session.rollbackPoint(keep) : keep
    }

    /// Generates from `input`; `onPiece` gets every generated token with the text it completes and
    /// returns false to stop (cancellation).
    public func generate(_ input: GenerationInput, _ p: GenerationParameters,
                         onPiece: (GeneratedPiece) -> Bool = { _ in true }) throws -> GenerationResult {
        let ids = try tokens(for: input)
        lock.lock(); defer { lock.unlock() }
        let g = try Generation(session: self, prompt: ids, parameters: p)
        var stop = false
        while let seg = g.nextSegment() {
            let logits = try session.forward(seg.tokens, logitsFor: seg.logitsFor)
            for piece in g.consume(logits: logits, cancelled: stop) where !stop {
                if !onPiece(piece) { stop = true }
            }
            if stop && !g.isFinished { _ = g.cancel() }
        }
        return g.result
    }

    /// Keeps the longest prefix of `ids` the cache can reuse (rolling a full cache back, or
    /// emptying a bounded one that cannot); returns how many prompt tokens are already in it.
    func prepare(for ids: [Int], adapter: LoRAAdapter?) throws -> Int {
        if adapter !== session.adapter {
            // the cached keys and values were computed with other weights
            session.reset()
            fed = []
            session.adapter = adapter
        }
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
        return fed.count
    }

    func fedAppend(_ t: [Int]) { fed += t }

    /// `reset()` for a driver that holds the session (`acquire`).
    func resetHeld() {
        session.reset()
        fed = []
    }

    /// Locks the session for a driver that steps generations itself (the server's scheduler).
    public func acquire() { lock.lock() }
    public func release() { lock.unlock() }

    /// A generation of `input` on this session, for a driver holding it (`acquire`).
    public func makeGeneration(_ input: GenerationInput, _ p: GenerationParameters) throws -> Generation {
        try Generation(session: self, prompt: try tokens(for: input), parameters: p)
    }

    /// `generate` as an asynchronous stream: `.piece` events, then one `.finished`. The work runs
    /// on a thread of its own (the forward pass is CPU-bound: it never blocks Swift's cooperative
    /// pool); when the consumer stops iterating (or its task is cancelled) the generation stops at
    /// the next token.
    public func stream(_ input: GenerationInput, _ p: GenerationParameters) -> AsyncThrowingStream<GenerationEvent, Error> {
        AsyncThrowingStream { continuation in
            let cancelled = CancelFlag()
            continuation.onTermination = { _ in cancelled.set() }
            let started = startThread(stackSize: 8 << 20) { [self] in
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
            if !started { continuation.finish(throwing: SinkKitError(.io, "cannot start a generation thread (the system refused one)")) }
        }
    }
}

/// A flag set from any thread.
final class CancelFlag: @unchecked Sendable {
    private let lock = Lock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
