#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import Logging
import Dispatch
import SKCore
import SKEngine

/// `skrun serve`: an OpenAI-compatible HTTP API on an engine's scheduler, on Hummingbird 2.
/// `POST /v1/chat/completions` (the model's chat template; `stream` as server-sent events in
/// OpenAI's chunk format), `POST /v1/completions`, `GET /v1/models`, `GET /health`. Errors are
/// OpenAI error objects: 400 for malformed JSON or bad parameters, 404 for an unknown path, 413 for a
/// body or prompt too large, 503 with Retry-After when every slot is busy and the queue is full.
/// A client that disconnects cancels its generation.
public struct ServerOptions: Sendable {
    public var host: String
    public var port: Int
    /// Largest request body accepted.
    public var maxBodyBytes: Int
    /// max_tokens when a request gives none.
    public var defaultMaxTokens: Int
    public init(host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int = 1 << 20, defaultMaxTokens: Int = 512) {
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.defaultMaxTokens = defaultMaxTokens
    }
}

public final class SinkKitServer: Sendable {
    public let scheduler: Scheduler
    public let options: ServerOptions
    let started = Int(Date().timeIntervalSince1970)

    public init(scheduler: Scheduler, options: ServerOptions) {
        self.scheduler = scheduler
        self.options = options
    }

    var modelName: String { scheduler.engine.modelName }

    /// Serves until SIGINT or SIGTERM; `onRunning` is called once the socket listens.
    public func run(onRunning: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let router = Router()
        router.add(middleware: OpenAIErrorMiddleware())
        router.get("/health") { _, _ in self.health() }
        router.get("/v1/models") { _, _ in self.models() }
        router.post("/v1/chat/completions") { request, context in try await self.complete(request, context: context, kind: .chat) }
        router.post("/v1/completions") { request, context in try await self.complete(request, context: context, kind: .completion) }
        let app = Application(router: router,
                              configuration: .init(address: .hostname(options.host, port: options.port), serverName: "sinkkit"),
                              onServerRunning: { channel in onRunning(channel.localAddress?.port ?? 0) },
                              logger: Logger(label: "sinkkit-serve", factory: { _ in SwiftLogNoOpLogHandler() }))
        // SIGINT/SIGTERM: Hummingbird stops accepting and waits for the open responses; ending every
        // generation first (their streams finish with an error) keeps that wait short.
        let sources = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler { [scheduler] in scheduler.shutdown() }
            src.resume()
            return src
        }
        defer { sources.forEach { $0.cancel() } }
        try await app.runService()
        scheduler.shutdown()
    }

    func health() -> Response {
        let load = scheduler.load
        return JSON.response(["status": "ok", "model": modelName, "slots": scheduler.slots.count,
                              "slots_busy": load.active, "queued": load.queued])
    }

    func models() -> Response {
        JSON.response(["object": "list", "data": [["id": modelName, "object": "model", "created": started, "owned_by": "sinkkit"]]])
    }

    func complete(_ request: Request, context: some RequestContext, kind: CompletionRequest.Kind) async throws -> Response {
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: options.maxBodyBytes) } catch {
            throw APIError(status: .contentTooLarge, message: "the request body is larger than \(options.maxBodyBytes) bytes", type: "invalid_request_error")
        }
        let req = try CompletionRequest(body: Data(buffer: body), kind: kind, defaultMaxTokens: options.defaultMaxTokens)
        let ids = try scheduler.promptTokens(req.input)
        let events = try scheduler.submit(tokens: ids, req.parameters)
        let id = (kind == .chat ? "chatcmpl-" : "cmpl-") + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let created = Int(Date().timeIntervalSince1970)
        if req.stream {
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                            body: ResponseBody { writer in
                                try await self.streamEvents(events, writer: &writer, id: id, created: created, request: req)
                            })
        }
        // Not streamed: wait for the result; a client that hangs up cancels the generation.
        let box = ResultBox()
        try await request.body.consumeWithInboundCloseHandler({ _ in
            for try await e in events { if case .finished(let r) = e { box.set(r) } }
        }, onInboundClosed: {})   // (a closed connection cancels the operation above: the event stream ends, the job is cancelled)
        guard let r = box.value else { throw APIError(status: .internalServerError, message: "the generation ended without a result", type: "server_error") }
        var choice: [String: Any] = ["index": 0, "finish_reason": Self.finishReason(r.stopReason), "logprobs": JSONNull()]
        if kind == .chat { choice["message"] = ["role": "assistant", "content": r.text] } else { choice["text"] = r.text }
        return JSON.response(["id": id, "object": kind == .chat ? "chat.completion" : "text_completion", "created": created,
                              "model": modelName, "choices": [choice], "usage": Self.usage(r)])
    }

    func streamEvents(_ events: AsyncThrowingStream<GenerationEvent, Error>, writer: inout any ResponseBodyWriter, id: String,
                      created: Int, request: CompletionRequest) async throws {
        let object = request.kind == .chat ? "chat.completion.chunk" : "text_completion"
        func chunk(_ choice: [String: Any]?, usage: [String: Any]? = nil) -> ByteBuffer {
            var d: [String: Any] = ["id": id, "object": object, "created": created, "model": modelName,
                                    "choices": choice.map { [$0] } ?? []]
            if let u = usage { d["usage"] = u }
            return ByteBuffer(string: "data: " + JSON.text(d) + "\n\n")
        }
        func delta(_ text: String?, finish: String?) -> [String: Any] {
            var c: [String: Any] = ["index": 0, "finish_reason": finish ?? JSONNull(), "logprobs": JSONNull()]
            if request.kind == .chat {
                var d: [String: Any] = [:]
                if let t = text { d["content"] = t }
                c["delta"] = d
            } else {
                c["text"] = text ?? ""
            }
            return c
        }
        if request.kind == .chat {
            try await writer.write(chunk(["index": 0, "delta": ["role": "assistant", "content": ""], "finish_reason": JSONNull(), "logprobs": JSONNull()]))
        }
        var iterator = events.makeAsyncIterator()
        while let e = try await iterator.next() {
            switch e {
            case .piece(let p):
                guard !p.text.isEmpty else { continue }
                try await writer.write(chunk(delta(p.text, finish: nil)))   // throws once the client is gone: the stream is then dropped
            case .finished(let r):
                try await writer.write(chunk(delta(nil, finish: Self.finishReason(r.stopReason))))
                if request.includeUsage { try await writer.write(chunk(nil, usage: Self.usage(r))) }
            }
        }
        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
        try await writer.finish(nil)
    }

    static func finishReason(_ r: StopReason) -> String {
        switch r {
        case .eos, .stop, .cancelled: return "stop"
        case .length, .contextFull: return "length"
        }
    }

    static func usage(_ r: GenerationResult) -> [String: Any] {
        var u: [String: Any] = ["prompt_tokens": r.promptTokens, "completion_tokens": r.generatedTokens, "total_tokens": r.promptTokens + r.generatedTokens]
        u["prompt_tokens_details"] = ["cached_tokens": r.reusedTokens]
        return u
    }
}

/// The result of a non-streamed generation, set by the consuming task.
final class ResultBox: @unchecked Sendable {
    private let lock = Lock()
    private var r: GenerationResult?
    func set(_ v: GenerationResult) { lock.lock(); r = v; lock.unlock() }
    var value: GenerationResult? { lock.lock(); defer { lock.unlock() }; return r }
}
