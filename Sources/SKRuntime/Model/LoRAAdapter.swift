import COpenBLAS
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKCore
import SKFormat
import SKModel

/// A LoRA fine-tune applied at run time (an SKM adapter file from `skconv adapter`): for each
/// adapted linear layer, y = W·x + B·(A·x) in f32 on top of the base's weights (whatever their
/// type), so a fine-tune's small delta is never rounded into 4-bit blocks; an embedding LoRA adds
/// B·A[:, token] to the looked-up row; replacement tensors (LongLoRA's trained norms and
/// embedding) stand in for the base's. Attached per session (`Session.adapter`).
public final class LoRAAdapter {
    public enum Kind: Int, CaseIterable, Sendable { case q, k, v, o, gate, up, down
        var module: String {
            switch self {
            case .q: return "self_attn.q_proj"; case .k: return "self_attn.k_proj"; case .v: return "self_attn.v_proj"
            case .o: return "self_attn.o_proj"; case .gate: return "mlp.gate_proj"; case .up: return "mlp.up_proj"; case .down: return "mlp.down_proj"
            }
        }
    }

    /// A (r × in) and B (out × r, the scale folded in), row-major f32; bias (out) for lora_bias.
    struct Pair {
        let a: [Float], b: [Float], bias: [Float]?
        let r: Int, inDim: Int, outDim: Int
    }

    public let path: String
    public let scale: Float
    /// The adapter file (its replacement matrices are read in place from the mapping).
    let file: SKMFile
    /// [layer][kind]
    let pairs: [[Pair?]]
    /// Embedding LoRA: Aᵀ (vocab × r) for row lookups, and B (hidden × r).
    let embeddingAT: [Float]?, embeddingB: [Float]?, embeddingRank: Int
    let norms: [String: [Float]]
    public let embedding: WeightMatrix?
    public let head: WeightMatrix?
    public var moduleCount: Int { pairs.reduce(0) { $0 + $1.compactMap { $0 }.count } + (embeddingB == nil ? 0 : 1) }

    public init(path: String, model: LlamaModel, scale: Float = 1) throws {
        guard scale.isFinite, abs(scale) <= 100 else { throw SinkKitError(.invalidArgument, "--lora-scale must be a finite number of magnitude at most 100 (got \(scale))") }
        self.path = path
        self.scale = scale
        let f = try SKMFile(path: path)
        file = f
        try VerifiedFiles().verify(f)
        guard f.metadata["model.architecture"]?.string == "lora" else {
            throw SinkKitError(.config, "\(path): not a SinkKit adapter file (model.architecture is not \"lora\"; make one with skconv adapter)")
        }
        guard let text = f.metadata["lora.base_config"]?.string else { throw SinkKitError(.config, "\(path): metadata lora.base_config is missing") }
        let base = try LlamaConfig(data: Data(text.utf8), path: "\(path): lora.base_config")
        let c = model.config
        let same = base.hiddenSize == c.hiddenSize && base.intermediateSize == c.intermediateSize && base.numHiddenLayers == c.numLayers
            && base.numAttentionHeads == c.numHeads && base.numKeyValueHeads == c.numKVHeads && base.headDim == c.headDim && base.vocabSize == c.vocabSize
        guard same else {
            throw SinkKitError(.shapeMismatch, "\(path): the adapter was made for a model of another shape (hidden \(base.hiddenSize), \(base.numHiddenLayers) layers, vocab \(base.vocabSize)) than \(model.file.path) (hidden \(c.hiddenSize), \(c.numLayers) layers, vocab \(c.vocabSize))")
        }
        func f32(_ t: SKMTensorInfo) throws -> [Float] {
            guard t.type == .f32 else { throw SinkKitError(.unsupportedDType, "\(path): \(t.name) must be f32") }
            return try f.withRawBytes(t) { Dequantize.tensor($0, type: .f32, group: 0, rows: t.rows, cols: t.cols) }
        }
        var pairs = [[Pair?]](repeating: Array(repeating: nil, count: Kind.allCases.count), count: c.numLayers)
        var norms: [String: [Float]] = [:]
        var embAT: [Float]?, embB: [Float]?, embR = 0
        var embedding: WeightMatrix?, head: WeightMatrix?
        var used = Set<String>()
        func dims(_ kind: Kind) -> (Int, Int) {
            switch kind {
            case .q: return (c.hiddenSize, c.qDim); case .k, .v: return (c.hiddenSize, c.kvDim); case .o: return (c.qDim, c.hiddenSize)
            case .gate, .up: return (c.hiddenSize, c.intermediateSize); case .down: return (c.intermediateSize, c.hiddenSize)
            }
        }
        for l in 0..<c.numLayers {
            for kind in Kind.allCases {
                let m = "model.layers.\(l).\(kind.module)"
                guard let ta = f.info(m + ".lora_a"), let tb = f.info(m + ".lora_b") else { continue }
                let (i, o) = dims(kind), r = ta.shape.first ?? 0
                guard ta.shape == [r, i], tb.shape == [o, r], r >= 1, r <= 4096 else {
                    throw SinkKitError(.shapeMismatch, "\(path): \(m) lora_a \(ta.shape) / lora_b \(tb.shape) do not fit [\(o), \(i)]")
                }
                var bias: [Float]?
                if let tbias = f.info(m + ".lora_bias") {
                    guard tbias.shape == [o] else { throw SinkKitError(.shapeMismatch, "\(path): \(m).lora_bias has shape \(tbias.shape), expected [\(o)]") }
                    bias = try f32(tbias).map { $0 * scale }
                    used.insert(tbias.name)
                }
                pairs[l][kind.rawValue] = Pair(a: try f32(ta), b: try f32(tb).map { $0 * scale }, bias: bias, r: r, inDim: i, outDim: o)
                used.formUnion([ta.name, tb.name])
            }
        }
        if let ta = f.info("model.embed_tokens.lora_a"), let tb = f.info("model.embed_tokens.lora_b") {
            let r = ta.shape.first ?? 0
            guard ta.shape == [r, c.vocabSize], tb.shape == [c.hiddenSize, r], r >= 1, r <= 4096 else {
                throw SinkKitError(.shapeMismatch, "\(path): embedding lora_a \(ta.shape) / lora_b \(tb.shape) do not fit vocab \(c.vocabSize) × hidden \(c.hiddenSize)")
            }
            let a = try f32(ta)
            var at = [Float](repeating: 0, count: a.count)
            for i in 0..<r { for v in 0..<c.vocabSize { at[v * r + i] = a[i * c.vocabSize + v] } }
            embAT = at; embB = try f32(tb).map { $0 * scale }; embR = r
            used.formUnion([ta.name, tb.name])
        }
        for t in f.tensors where !used.contains(t.name) {
            switch t.name {
            case "model.embed_tokens.weight":
                guard t.shape == [c.vocabSize, c.hiddenSize] else { throw SinkKitError(.shapeMismatch, "\(path): \(t.name) has shape \(t.shape)") }
                embedding = try WeightMatrix(file: f, info: t)
            case "lm_head.weight":
                guard t.shape == [c.vocabSize, c.hiddenSize], !c.tieWordEmbeddings else { throw SinkKitError(.shapeMismatch, "\(path): \(t.name) does not fit this model") }
                head = try WeightMatrix(file: f, info: t)
            case let n where n == "model.norm.weight" || n.hasSuffix("_layernorm.weight"):
                guard t.shape == [c.hiddenSize], model.normNames.contains(n) else { throw SinkKitError(.shapeMismatch, "\(path): \(n) does not fit this model") }
                norms[n] = try f32(t).map { $0 + c.family.normWeightOffset }   // as the model's (Gemma: 1 + w)
            default:
                throw SinkKitError(.shapeMismatch, "\(path): tensor \(t.name) is not something a run-time adapter applies (refused rather than ignored)")
            }
        }
        self.pairs = pairs
        self.norms = norms
        embeddingAT = embAT; embeddingB = embB; embeddingRank = embR
        self.embedding = embedding
        self.head = head ?? (c.tieWordEmbeddings ? embedding : nil)
    }

    func pair(layer: Int, kind: Kind) -> Pair? { pairs[layer][kind.rawValue] }
    func norm(_ name: String) -> [Float]? { norms[name] }

    /// out (n × outDim, leading dimension ldOut) += B·(A·x) (+ bias) for the n rows of x (ldX).
    func apply(_ p: Pair, x: UnsafePointer<Float>, ldX: Int, n: Int, out: UnsafeMutablePointer<Float>, ldOut: Int, scratch: inout [Float]) {
        if scratch.count < n * p.r { scratch = [Float](repeating: 0, count: n * p.r) }
        scratch.withUnsafeMutableBufferPointer { t in
            p.a.withUnsafeBufferPointer { a in
                // t (n × r) = x (n × in) · Aᵀ
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(p.r), Int32(p.inDim), 1, x, Int32(ldX), a.baseAddress, Int32(p.inDim), 0, t.baseAddress, Int32(p.r))
            }
            p.b.withUnsafeBufferPointer { b in
                // out (n × out) += t · Bᵀ
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(p.outDim), Int32(p.r), 1, t.baseAddress, Int32(p.r), b.baseAddress, Int32(p.r), 1, out, Int32(ldOut))
            }
        }
        if let bias = p.bias { for i in 0..<n { for d in 0..<p.outDim { out[i * ldOut + d] += bias[d] } } }
    }

    /// An embedding row += B · A[:, token].
    func addEmbeddingDelta(_ token: Int, into row: UnsafeMutablePointer<Float>, hidden: Int) {
        guard let at = embeddingAT, let b = embeddingB else { return }
        let r = embeddingRank
        for d in 0..<hidden {
            var s: Float = 0
            for i in 0..<r { s += b[d * r + i] * at[token * r + i] }
            row[d] += s
        }
    }
}
