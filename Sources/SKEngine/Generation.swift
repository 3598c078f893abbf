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

/// One request's generation over a session, as a state machine a driver steps: `nextSegment()`
/// gives the tokens to feed next (a prefill chunk, or the token just sampled), `consume(logits:)`
/// samples from the logits that segment produced and reports what was generated. `EngineSession`
/// drives it alone; the server's scheduler drives several together in one batched forward step.
/// The same prefill chunking in both, so a prompt gives the same tokens through either.
public final class Generation {
    /// Prompt tokens fed per step at most (full cache; a bounded cache's own chunk is smaller).
    public static let prefillStep = 512

    public let session: EngineSession
    public let parameters: GenerationParameters
    public let promptTokens: [Int]
    public private(set) var result: GenerationResult
    public private(set) var isFinished = false
    private var next: Int                 // index into promptTokens of the next prompt token to feed
    private var pendingToken: Int?        // the sampled token to feed next
    private var sampler: Sampler
    private var decoder: StreamDecoder
    private var matcher: StopMatcher
    private var history: [Int]
    private let stops: Set<Int>
    private var promptStart = Date(), genStart = Date()

    /// Prepares `ids` on `session`: keeps what its cache already holds (prompt reuse), rolls back
    /// or empties it otherwise. The caller holds the session for the generation's whole life.
    init(session es: EngineSession, prompt ids: [Int], parameters p: GenerationParameters) throws {
        guard !ids.isEmpty else { throw SinkKitError(.invalidArgument, "the prompt is empty after tokenization") }
        let s = es.session
        if let ctx = s.context, ids.count > ctx || (ids.count == ctx && p.maxTokens != 0) {
            throw SinkKitError(.invalidArgument, "the prompt has \(ids.count) tokens, more than the \(ctx)-token context leaves room for (raise --ctx, up to the trained \(es.engine.config.trainedContext), or use a bounded --kv policy)")
        }
        session = es
        parameters = p
        promptTokens = ids
        result = GenerationResult(text: "", tokens: [], promptTokens: ids.count, reusedTokens: 0, stopReason: .length,
                                  promptSeconds: 0, generationSeconds: 0)
        sampler = Sampler(seed: p.seed)
        sampler.temperature = p.temperature; sampler.topK = p.topK; sampler.topP = p.topP; sampler.minP = p.minP
        sampler.repeatPenalty = p.repeatPenalty
        decoder = StreamDecoder(tokenizer: es.engine.tokenizer, skipSpecialTokens: true)
        matcher = StopMatcher(p.stop)
        history = ids
        stops = es.engine.stopTokens
        next = try es.prepare(for: p.cachePrompt ? ids : [], adapter: try es.engine.adapter(for: p))   // (-n 0 still evaluates the prompt, as llama.cpp does)
        result.reusedTokens = next
    }

    /// The segment to feed next (nil once finished).
    public func nextSegment() -> ForwardSegment? {
        guard !isFinished else { return nil }
        let s = session.session
        if let t = pendingToken { return ForwardSegment(session: s, tokens: [t], logitsFor: [0]) }
        if next == result.reusedTokens { promptStart = Date() }
        let step = s.context == nil ? s.attention.chunk : Self.prefillStep
        let end = min(promptTokens.count, next + step)
        return ForwardSegment(session: s, tokens: Array(promptTokens[next..<end]), logitsFor: end == promptTokens.count ? [end - next - 1] : [])
    }

    /// Takes the logits of the segment `nextSegment()` gave; returns the pieces generated (at most
    /// one token's, plus the held-back tail when the generation ends). `cancelled`: the consumer is gone.
    public func consume(logits: [Float], cancelled: Bool = false) -> [GeneratedPiece] {
        guard !isFinished else { return [] }
        if let t = pendingToken {
            session.fedAppend([t])
            pendingToken = nil
        } else {
            let end = min(promptTokens.count, next + (session.session.context == nil ? session.session.attention.chunk : Self.prefillStep))
            session.fedAppend(Array(promptTokens[next..<end]))
            next = end
            guard next == promptTokens.count else { return [] }   // more prompt to feed
            result.promptSeconds = Date().timeIntervalSince(promptStart)
            genStart = Date()
        }
        if cancelled { return finish(.cancelled) }
        let p = parameters
        if let m = p.maxTokens, result.tokens.count >= m { return finish(.length) }
        let token = sampler.sample(logits[...], history: history)
        if !p.ignoreEOS && stops.contains(token) { return finish(.eos) }
        result.tokens.append(token)
        history.append(token)
        let (text, stopped) = matcher.push(decoder.push(token))
        result.text += text
        var pieces = [GeneratedPiece(token: token, text: text)]
        if stopped { return pieces + finish(.stop, flushText: false) }
        if let m = p.maxTokens, result.tokens.count >= m { return pieces + finish(.length) }
        if let ctx = session.session.context, session.session.position >= ctx { return pieces + finish(.contextFull) }
        pendingToken = token
        return pieces
    }

    /// Ends the generation (a consumer that went away, a server shutting down).
    public func cancel() -> [GeneratedPiece] { isFinished ? [] : finish(.cancelled, flushText: false) }

    private func finish(_ reason: StopReason, flushText: Bool = true) -> [GeneratedPiece] {
        isFinished = true
        result.stopReason = reason
        result.generationSeconds = Date().timeIntervalSince(genStart)
        guard flushText && reason != .cancelled else { return [] }
        let (tail, stopped) = matcher.push(decoder.flush())
        let rest = stopped ? tail : tail + matcher.flush()
        if stopped { result.stopReason = .stop }
        guard !rest.isEmpty else { return [] }
        result.text += rest
        return [GeneratedPiece(token: -1, text: rest)]
    }
}
