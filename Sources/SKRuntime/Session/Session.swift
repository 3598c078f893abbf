#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKCore
import SKKernels

/// One inference stream over a model: the KV cache, the cache policy's per-session state and the
/// forward pass's scratch memory. `forward` appends tokens at the next positions and returns the
/// logits asked for. The layer loop is in Forward.swift, attention in Attention/.
public final class Session {
    public let model: LlamaModel
    public let cache: KVCache
    public let threads: Int
    public let attention: AttentionConfig
    /// Positions a full cache can hold (nil: a bounded policy streams any length).
    public let context: Int?
    /// The cache policy's memory for this stream (H2O's scores).
    let evictor: KVEvictor
    var rope: Rope
    let matmul: MatMul
    let kernels: sk_kernel_table
    let state: RunState
    var deltaTable: RopeDeltaTable?
    /// Prompt chunks keep activations in f32 for quantized weights (see `MatMul.preciseActivations`).
    public var preciseActivations: Bool {
        get { matmul.preciseActivations }
        set { matmul.preciseActivations = newValue }
    }
    /// A LoRA fine-tune applied at run time to this session's forward passes (`skrun --lora`).
    public var adapter: LoRAAdapter?
    /// When set, every matmul's inputs are added to it (calibration).
    public var activationStatistics: ActivationStatistics?

    /// - Parameters:
    ///   - context: the KV cache size for a full cache; with a bounded policy (or SF-Attn's
    ///     segment cache) the cache holds the policy's budget plus one prefill chunk instead.
    public init(model: LlamaModel, context: Int, threads: Int, attention: AttentionConfig = .full) throws {
        let c = model.config
        guard context > 0 else { throw SinkKitError(.invalidArgument, "context must be positive") }
        var attention = attention
        if attention.kvDType.valueType == .int4 && c.headDim % 2 != 0 {
            throw SinkKitError(.invalidArgument, "--kv-dtype \(attention.kvDType.rawValue) needs an even head dimension (this model's is \(c.headDim))")
        }
        if let w = c.slidingWindow {
            // (Gemma 2's window covers alternate layers: a full cache, only the mask)
            // Sliding-window attention (Mistral): the mask lets position p read keys p-w+1...p
            // (attention kernels), and, with the default full cache, the cache keeps only the last
            // w keys (the KV bound: older ones are never read again), at absolute positions.
            guard attention.sf == nil else {
                throw SinkKitError(.invalidArgument, "SF-Attn on a model with sliding-window attention (sliding_window \(w)) is not supported")
            }
            if attention.policy is FullCache, context > w, c.slidingLayers == nil {
                attention.policy = WindowCache(budget: w, sinks: 0)
                attention.positions = .absolute
            }
        }
        self.model = model
        self.threads = max(1, threads)
        self.attention = attention
        let capacity: Int
        if let b = attention.policy.headCapacity {
            capacity = min(b, context) + attention.chunk
            self.context = nil
        } else {
            capacity = context
            self.context = context
        }
        cache = KVCache(layers: c.numLayers, kvHeads: c.numKVHeads, headDim: c.headDim, capacity: capacity, dtype: attention.kvDType,
                        pinned: attention.policy.sinks)
        evictor = attention.policy.makeEvictor(layers: c.numLayers, kvHeads: c.numKVHeads)
        rope = Rope(config: c)
        matmul = MatMul(threads: self.threads)
        kernels = sk_kernels_best().pointee
        state = RunState(config: c, capacity: capacity, workers: self.threads)
        state.reserve(rows: min(capacity, attention.chunk))
    }

    public var position: Int { cache.position }
    public var kernelName: String { String(cString: kernels.name) }

    /// Forgets every position from `position` on, so a stream can continue from a shared prefix
    /// (a chat's next turn, a server request that extends a cached prompt). Only a full cache can
    /// roll back: a bounded policy may already have evicted what it would need.
    public func truncate(to position: Int) throws {
        guard context != nil else {
            throw SinkKitError(.invalidArgument, "a \(attention.policy.name) cache cannot roll back to position \(position)")
        }
        guard position >= 0, position <= cache.position else {
            throw SinkKitError(.invalidArgument, "cannot roll back to position \(position) of \(cache.position)")
        }
        for layer in cache.heads {
            for hc in layer {
                let keep = hc.positions.prefix { $0 < position }.count
                if keep < hc.count { hc.truncate(to: keep) }
            }
        }
        cache.position = position
    }

    /// The last position at or before `position` from which a cache rolled back (`truncate`)
    /// continues exactly as a fresh session fed the same tokens would: `position` itself for the
    /// types that store each key on its own; for kivi4, whose keys are sealed 32 at a time after
    /// the sinks, the last group boundary (a group sealed with later tokens holds other scales).
    public func rollbackPoint(_ position: Int) -> Int {
        cache.dtype == .kivi4 ? KIVIKVStorage.sealBoundary(atOrBefore: position, pinned: attention.policy.sinks) : position
    }

    /// Starts a new stream: the cache and the policy's state are emptied.
    public func reset() {
        cache.reset()
        evictor.reset()
    }

    /// Runs `tokens` through the model at positions `position ..< position + n`, in prefill
    /// chunks when the cache is bounded (the policy evicts after each chunk).
    /// - Parameter logitsFor: indices into `tokens` whose logits to return (row-major, vocab each).
    public func forward(_ tokens: [Int], logitsFor: [Int]) throws -> [Float] {
        let chunk = context == nil ? attention.chunk : max(1, tokens.count)
        if tokens.count <= chunk { return try forwardChunk(tokens, logitsFor: logitsFor) }
        let vocab = model.config.vocabSize
        var byRow: [Int: ArraySlice<Float>] = [:]
        var start = 0
        while start < tokens.count {
            let end = min(tokens.count, start + chunk)
            let rows = logitsFor.filter { $0 >= start && $0 < end }
            let l = try forwardChunk(Array(tokens[start..<end]), logitsFor: rows.map { $0 - start })
            for (k, r) in rows.enumerated() { byRow[r] = l[(k * vocab)..<((k + 1) * vocab)] }
            start = end
        }
        return logitsFor.flatMap { byRow[$0]! }
    }
}
