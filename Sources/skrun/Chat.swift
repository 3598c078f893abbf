#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import SKCore
import SKEngine
import SKRuntime

/// `skrun --chat` without a prompt: an interactive chat that keeps its KV cache between turns
/// (only the new turn is prefilled). Ctrl-C stops the current reply and returns to the prompt; a
/// second Ctrl-C at the prompt exits. An empty line does nothing; /bye, /clear and /help are
/// commands. When the conversation outgrows the context, a bounded policy (window, h2o) keeps it
/// going (said once); a full cache says how to continue.
struct Chat {
    let engine: Engine
    let settings: AttentionSettings
    let ctx: Int?
    let sampling: GenerationParameters
    let system: String?

    static let help = """
        /bye    leave the chat (so does Ctrl-D, or Ctrl-C twice at the prompt)
        /clear  forget the conversation (the KV cache is emptied)
        /help   this text
        Ctrl-C while the model answers stops the answer.
        """

    func run() throws {
        let context = ctx ?? engine.config.trainedContext
        let session = try engine.makeSession(context: context, attention: settings)
        let conversation = Conversation(session: session, system: system)
        let interrupts = ChatInterrupts()
        var saidBounded = false
        eprint("chat with \(engine.modelName) (\(settings.isBounded ? "\(settings.effectiveCache.rawValue) cache, any length" : "\(context)-token context")); /help for commands")
        while true {
            eprint("> ", terminator: "")
            interrupts.atPrompt()
            guard let line = readLine() else { eprint(""); return }
            let text = line.trimmingWhitespace()
            if text.isEmpty { continue }
            switch text {
            case "/bye", "/exit", "/quit": return
            case "/clear": conversation.clear(); eprint("(conversation cleared)"); continue
            case "/help": eprint(Self.help); continue
            default: break
            }
            interrupts.generating()
            var p = sampling
            if p.maxTokens == nil, let c = session.context { p.maxTokens = c }
            do {
                let r = try conversation.turn(text, p) { piece in
                    print(piece.text, terminator: ""); fflush(stdout)
                    return !interrupts.cancelRequested
                }
                print("")
                switch r.stopReason {
                case .cancelled: eprint("(stopped)")
                case .contextFull:
                    eprint("(the conversation fills the \(context)-token context: /clear to start over, or restart with --kv window --kv-budget N or --kv h2o --kv-budget N to keep going in bounded memory)")
                default: break
                }
                if settings.isBounded && !saidBounded, let budget = try? settings.config(model: engine.config, context: context, base: context).policy.budget,
                   conversation.tokenCount > budget {
                    eprint("(the conversation, \(conversation.tokenCount) tokens, is longer than the \(budget)-slot \(settings.effectiveCache.rawValue) cache: it keeps going, the cache evicting as it goes)")
                    saidBounded = true
                }
            } catch let e as SinkKitError {
                print("")
                if e.kind == .invalidArgument && e.message.contains("context") {
                    eprint("(the conversation no longer fits the \(context)-token context: /clear to start over, or restart with a bounded --kv policy)")
                } else {
                    throw e
                }
            }
        }
    }
}

/// Ctrl-C in the chat: while the model answers it requests a stop; at the prompt, the first one
/// prints a hint and the second exits (130).
final class ChatInterrupts: @unchecked Sendable {
    private let lock = Lock()
    private var answering = false
    private var cancel = false
    private var presses = 0
    private let source: DispatchSourceSignal

    init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in self.pressed() }
        source.resume()
    }

    func pressed() {
        lock.lock(); defer { lock.unlock() }
        if answering { cancel = true; return }
        presses += 1
        if presses >= 2 { StandardStreams.error("\n"); exit(ExitStatus.interrupted.rawValue) }
        StandardStreams.error("\n(Ctrl-C again to leave, or /bye)\n> ")
    }

    func atPrompt() { lock.lock(); answering = false; cancel = false; lock.unlock() }
    func generating() { lock.lock(); answering = true; presses = 0; cancel = false; lock.unlock() }
    var cancelRequested: Bool { lock.lock(); defer { lock.unlock() }; return cancel }
}
