import ArgumentParser
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
import SKServer

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve an OpenAI-compatible HTTP API (chat and text completions, streaming).")

    @OptionGroup var options: RuntimeOptions
    @OptionGroup var attn: AttentionOptions
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port, printed at start).") var port = 8080
    @Option(name: [.customLong("parallel"), .customLong("np", withSingleDash: true)], help: "Slots: requests generated concurrently, batched in one forward pass.") var parallel = 1
    @Option(name: [.customShort("c"), .customLong("ctx")], help: "Context of each slot's full KV cache (default: 4096, at most the trained context).") var ctx: Int?
    @Option(name: .customLong("queue"), help: "Requests that may wait for a free slot (beyond: 503 with Retry-After).") var queue = 16
    @Option(name: .customLong("max-tokens"), help: "max_tokens for requests that give none.") var maxTokens = 512
    @Option(name: .customLong("max-body"), help: "Largest request body, bytes.") var maxBody = 1 << 20

    func validate() throws {
        try bounded(port, 0...65535, "--port")
        try bounded(parallel, 1...64, "--parallel")
        if let c = ctx { try bounded(c, 2...Limits.maxTokens, "--ctx") }
        try bounded(queue, 1...4096, "--queue")
        try bounded(maxTokens, 1...Limits.maxTokens, "--max-tokens")
        try bounded(maxBody, 1024...(1 << 30), "--max-body")
    }

    func run() throws {
        var server: SinkKitServer?
        try reportingErrors {
            let engine = try options.engine()
            let context = ctx ?? min(4096, engine.config.trainedContext)
            let settings = try attn.settings()
            let scheduler = try Scheduler(engine: engine, options: .init(slots: parallel, queueCapacity: queue, context: context,
                                                                         attention: settings, threads: options.threads))
            let weights = engine.model.file.file.size
            let kv = scheduler.kvBytesPerSlot
            eprint(String(printf: "serving %@ on http://%@:%@ — %d slot(s), %@; memory: weights %.1f MB (mapped) + %d × %.1f MB of KV at most = %.1f MB",
                          engine.modelName, host, port == 0 ? "(any port)" : String(port), parallel,
                          settings.isBounded ? "\(settings.effectiveCache.rawValue) cache per slot" : "\(context)-token context per slot",
                          Double(weights) / 1e6, parallel, Double(kv) / 1e6, Double(weights + parallel * kv) / 1e6))
            server = SinkKitServer(scheduler: scheduler, options: ServerOptions(host: host, port: port, maxBodyBytes: maxBody, defaultMaxTokens: maxTokens))
        }
        // The HTTP server is asynchronous; this command's thread waits for it (SIGINT/SIGTERM stop it).
        let done = DispatchSemaphore(value: 0)
        let failure = ErrorBox()
        let s = server!, h = host
        Task {
            do {
                try await s.run { port in StandardStreams.error("listening on \(h):\(port)\n") }
            } catch {
                failure.error = error
            }
            done.signal()
        }
        done.wait()
        if let e = failure.error {
            eprint("error: cannot serve on \(host):\(port): \(e)")
            throw ExitCode(ExitStatus.io.rawValue)
        }
    }
}

final class ErrorBox: @unchecked Sendable { var error: Error? }
