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

/// Several concurrent generations over one engine, as a server needs them: `slots` sessions
/// (each with its own bounded or full KV cache), a bounded queue of waiting requests, and one
/// thread that steps every active generation together in one batched forward pass per step
/// (`BatchForward`: the weights are read once per step for all slots; each generation gets
/// exactly the tokens it would get alone). A request whose prompt extends what a free slot's
/// cache holds goes to that slot and prefills only the new tokens.
public final class Scheduler: @unchecked Sendable {
    public struct Options: Sendable {
        public var slots: Int
        /// Requests that may wait for a slot; more are refused (`SchedulerError.queueFull`).
        public var queueCapacity: Int
        /// Positions each slot's full cache holds (a bounded policy: any length).
        public var context: Int
        public var attention: AttentionSettings
        public var threads: Int
        public init(slots: Int = 1, queueCapacity: Int = 16, context: Int = 4096, attention: AttentionSettings = AttentionSettings(), threads: Int) {
            self.slots = slots
            self.queueCapacity = queueCapacity
            self.context = context
            self.attention = attention
            self.threads = threads
        }
    }

    public enum SchedulerError: Error, Sendable, Equatable {
        case queueFull
        case shuttingDown
    }

    final class Job: @unchecked Sendable {
        let ids: [Int]
        let parameters: GenerationParameters
        let continuation: AsyncThrowingStream<GenerationEvent, Error>.Continuation
        let cancelled = CancelFlag()
        var generation: Generation?
        var slot = -1
        /// The run-time adapter this request runs with (slots holding another one reuse nothing).
        var adapter: LoRAAdapter?
        init(ids: [Int], parameters: GenerationParameters, continuation: AsyncThrowingStream<GenerationEvent, Error>.Continuation) {
            self.ids = ids
            self.parameters = parameters
            self.continuation = continuation
        }
    }

    public let engine: Engine
    public let options: Options
    public let slots: [EngineSession]
    let batch: BatchForward
    private let condition = Condition()
    private var queue: [Job] = []
    private var active: [Job] = []
    private var running = true

    public init(engine: Engine, options: Options) throws {
        self.engine = engine
        self.options = options
        guard (1...64).contains(options.slots) else { throw SinkKitError(.invalidArgument, "--parallel must be between 1 and 64 (got \(options.slots))") }
        slots = try (0..<options.slots).map { _ in
            try engine.makeSession(context: options.context, attention: options.attention, threads: options.threads)
        }
        batch = BatchForward(model: engine.model, threads: options.threads)
        batch.preciseActivations = engine.preciseActivations
        guard startThread(stackSize: 8 << 20, { [self] in loop() }) else {
            throw SinkKitError(.io, "cannot start the scheduler thread (the system refused one)")
        }
    }

    /// KV bytes every slot may hold at most (its cache's allocation).
    public var kvBytesPerSlot: Int { slots.first?.session.cache.bytes ?? 0 }

    /// The prompt's tokens, checked against a slot's context (nothing is queued yet).
    public func promptTokens(_ input: GenerationInput) throws -> [Int] {
        let ids = try engine.tokens(for: input)
        guard !ids.isEmpty else { throw SinkKitError(.invalidArgument, "the prompt is empty after tokenization") }
        if let ctx = slots[0].context, ids.count >= ctx {
            throw SinkKitError(.invalidArgument, "the prompt has \(ids.count) tokens; a slot's context holds \(ctx)")
        }
        return ids
    }

    /// Queues a generation; its events arrive on the stream (stopping to read it cancels it).
    public func submit(tokens ids: [Int], _ p: GenerationParameters) throws -> AsyncThrowingStream<GenerationEvent, Error> {
        let adapter = try engine.adapter(for: p)   // refused here (no adapter loaded, too many scales), not in the loop
        var job: Job?
        let stream = AsyncThrowingStream<GenerationEvent, Error> { c in
            let j = Job(ids: ids, parameters: p, continuation: c)
            j.adapter = adapter
            c.onTermination = { [weak self] _ in
                j.cancelled.set()
                self?.wake()
            }
            job = j
        }
        condition.lock()
        defer { condition.unlock() }
        guard running else { throw SchedulerError.shuttingDown }
        guard queue.count < max(1, options.queueCapacity) else { throw SchedulerError.queueFull }
        queue.append(job!)
        condition.signal()
        return stream
    }

    /// Active generations and waiting requests.
    public var load: (active: Int, queued: Int) {
        condition.lock(); defer { condition.unlock() }
        return (active.count, queue.count)
    }

    public func shutdown() {
        condition.lock()
        running = false
        condition.signal()
        condition.unlock()
    }

    private func wake() {
        condition.lock()
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while running && active.isEmpty && queue.isEmpty { condition.wait() }
            if !running {
                let all = active + queue
                active = []; queue = []
                condition.unlock()
                for j in all { j.continuation.finish(throwing: SchedulerError.shuttingDown) }
                return
            }
            // Admit waiting requests to free slots, each to the slot whose cache holds the
            // longest prefix of its prompt.
            var admitted: [Job] = []
            var busy = Set(active.map(\.slot))
            while !queue.isEmpty && busy.count < slots.count {
                let j = queue.removeFirst()
                if j.cancelled.isSet { j.continuation.finish(); continue }
                let free = slots.indices.filter { !busy.contains($0) }
                j.slot = j.parameters.cachePrompt
                    ? free.max { slots[$0].reusablePrefix(j.ids, adapter: j.adapter) < slots[$1].reusablePrefix(j.ids, adapter: j.adapter) }!
                    : free[0]
                busy.insert(j.slot)
                admitted.append(j)
            }
            condition.unlock()

            for j in admitted {
                let s = slots[j.slot]
                s.acquire()
                do {
                    j.generation = try s.makeGeneration(.tokens(j.ids), j.parameters)
                    append(j)
                } catch {
                    s.release()
                    j.continuation.finish(throwing: error)
                }
            }
            step()
        }
    }

    private func append(_ j: Job) {
        condition.lock(); active.append(j); condition.unlock()
    }

    /// One batched forward step over every active generation.
    private func step() {
        condition.lock()
        let jobs = active
        condition.unlock()
        var stepping: [Job] = [], segments: [ForwardSegment] = []
        for j in jobs {
            guard let g = j.generation else { continue }
            if j.cancelled.isSet { _ = g.cancel(); finish(j); continue }
            guard let seg = g.nextSegment() else { finish(j); continue }
            stepping.append(j)
            segments.append(seg)
        }
        guard !segments.isEmpty else { return }
        do {
            let logits = try batch.step(segments)
            for (j, l) in zip(stepping, logits) {
                let g = j.generation!
                for piece in g.consume(logits: l, cancelled: j.cancelled.isSet) {
                    if case .terminated = j.continuation.yield(.piece(piece)) { j.cancelled.set() }
                }
                if g.isFinished { finish(j) }
            }
        } catch {
            for j in stepping {
                condition.lock(); active.removeAll { $0 === j }; condition.unlock()
                slots[j.slot].resetHeld()
                slots[j.slot].release()
                j.continuation.finish(throwing: error)
            }
        }
    }

    private func finish(_ j: Job) {
        condition.lock(); active.removeAll { $0 === j }; condition.unlock()
        if let r = j.generation?.result { j.continuation.yield(.finished(r)) }
        j.continuation.finish()
        slots[j.slot].release()
    }
}
