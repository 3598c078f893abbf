import SKCore

/// A chat that keeps its KV cache between turns: each turn feeds only what is new since the
/// cache's last token (the end of the previous reply, the new user message, the assistant's
/// header), found as the text the chat template adds to the previous rendering. If a template
/// re-renders earlier turns differently, the turn falls back to the whole conversation (a full
/// cache keeps the common token prefix; a bounded one starts over).
public final class Conversation: @unchecked Sendable {
    public let session: EngineSession
    public private(set) var messages: [ChatMessage]
    /// The rendered prompt of the last turn and the token ids it was fed as (with the reply's tokens).
    private var lastPrompt = ""
    private var lastReply = ""
    private var lastIds: [Int] = []

    public init(session: EngineSession, system: String? = nil) {
        self.session = session
        messages = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
    }

    /// One turn: the user's message in, the assistant's reply streamed to `onPiece`.
    public func turn(_ user: String, _ p: GenerationParameters, onPiece: (GeneratedPiece) -> Bool) throws -> GenerationResult {
        let engine = session.engine
        let next = messages + [ChatMessage(role: "user", content: user)]
        let rendered = try engine.render(next)
        let before = lastPrompt + lastReply
        var ids: [Int]
        if !lastIds.isEmpty, rendered.hasPrefix(before), rendered.unicodeScalars.count > before.unicodeScalars.count {
            let delta = String(rendered.unicodeScalars.dropFirst(before.unicodeScalars.count))
            ids = lastIds + engine.tokenize(delta, addSpecialTokens: false)
        } else {
            ids = engine.tokenize(rendered, addSpecialTokens: false)
        }
        let r = try session.generate(.tokens(ids), p, onPiece: onPiece)
        messages = next + [ChatMessage(role: "assistant", content: r.text)]
        lastPrompt = rendered
        lastReply = r.text
        lastIds = ids + r.tokens
        return r
    }

    /// Forgets the conversation (the system message stays) and empties the cache.
    public func clear() {
        messages = messages.filter { $0.role == "system" }
        lastPrompt = ""; lastReply = ""; lastIds = []
        session.reset()
    }

    /// Tokens the conversation has fed so far.
    public var tokenCount: Int { session.fed.count }
}
