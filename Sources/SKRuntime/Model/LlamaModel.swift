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
import SKKernels

/// How much of an SKM file's integrity is checked at load. The header, the table, the padding and
/// every rule of Formats/SKM.md are always checked; this is about the tensor checksums.
public enum Integrity: Sendable {
    /// Check every tensor's CRC-32 unless this exact file (device, inode, size, times) was
    /// verified before (`VerifiedFiles`): the default.
    case checkOnce
    /// Check every tensor's CRC-32 at every load.
    case always
    /// Check none (`--no-verify`).
    case skip
}

/// An SKM model mapped for inference: config, tokenizer metadata and weight views.
public final class LlamaModel {
    public struct Layer {
        let inputNorm: [Float]
        /// The norm before the MLP (Llama's `post_attention_layernorm`, Gemma 2's `pre_feedforward_layernorm`).
        let postNorm: [Float]
        /// Gemma 2: the norms of the attention output and of the MLP output, before each residual add.
        let attnOutNorm, mlpOutNorm: [Float]?
        let q, k, v, o, gate, up, down: WeightMatrix
        let qBias, kBias, vBias, oBias: [Float]?
        /// Qwen3: RMSNorm weights over one head (queries, keys) applied before RoPE.
        let qNorm, kNorm: [Float]?
        public let gateBias, upBias, downBias: [Float]?
    }

    public let file: SKMFile
    public let config: ModelConfig
    public let layers: [Layer]
    public let embedding: WeightMatrix
    public let head: WeightMatrix
    public let finalNorm: [Float]
    /// Names of every norm weight (what a run-time adapter may replace).
    public let normNames: Set<String>

    /// `threads`: workers for the load's repacking (nil: every core).
    public init(path: String, integrity: Integrity = .checkOnce, threads: Int? = nil) throws {
        file = try SKMFile(path: path)
        switch integrity {
        case .always: try file.verify(release: true)
        case .checkOnce: try VerifiedFiles().verify(file)
        case .skip: break
        }
        config = try ModelConfig(metadata: file.metadata, path: path)
        let c = config, f = file
        let compressed = f.tensors.filter { $0.compression == .zstd }.reduce(0) { $0 + $1.rawBytes }
        if compressed > 0, let avail = Runtime.availableMemory(), compressed > avail {
            throw SinkKitError(.io, "\(path): its compressed tensors expand to \(compressed / 1_000_000) MB, more than the \(avail / 1_000_000) MB of memory available")
        }
        guard f.tensors.count >= 9 * c.numLayers + 2 else {
            throw SinkKitError(.shapeMismatch, "\(path): the config has \(c.numLayers) layers (9 tensors each) but the file holds only \(f.tensors.count) tensors")
        }
        var used = Set<String>()
        func info(_ name: String) throws -> SKMTensorInfo {
            guard let t = f.info(name) else { throw SinkKitError(.shapeMismatch, "\(path): tensor \(name) is missing") }
            used.insert(name)
            return t
        }
        func matrix(_ name: String, _ rows: Int, _ cols: Int) throws -> WeightMatrix {
            let t = try info(name)
            guard t.shape == [rows, cols] else {
                throw SinkKitError(.shapeMismatch, "\(path): \(name) has shape \(t.shape), the config expects [\(rows), \(cols)]")
            }
            return try WeightMatrix(file: f, info: t)
        }
        func vector(_ name: String, _ n: Int) throws -> [Float] {
            let t = try info(name)
            guard t.shape == [n], !t.type.isQuantized else {
                throw SinkKitError(.shapeMismatch, "\(path): \(name) has shape \(t.shape) (\(t.type.userName)), expected [\(n)] f32/f16")
            }
            return try f.withRawBytes(t) { Dequantize.tensor($0, type: t.type, group: 0, rows: 1, cols: n) }
        }
        // RMSNorm weights as the kernel multiplies by them (Gemma's `1 + w`, added in f32 as transformers does)
        let offset = c.family.normWeightOffset
        func norm(_ name: String, _ n: Int) throws -> [Float] { try vector(name, n).map { $0 + offset } }
        embedding = try matrix("model.embed_tokens.weight", c.vocabSize, c.hiddenSize)
        head = c.tieWordEmbeddings ? embedding : try matrix("lm_head.weight", c.vocabSize, c.hiddenSize)
        finalNorm = try norm("model.norm.weight", c.hiddenSize)
        layers = try (0..<c.numLayers).map { l in
            let p = "model.layers.\(l)."
            func bias(_ n: String, _ size: Int, if present: Bool) throws -> [Float]? { present ? try vector(p + n, size) : nil }
            // Biases are read where the config says the model has them (q/k/v/o: attention_bias,
            // Qwen2's o_proj has none; gate/up/down: mlp_bias); any other tensor is refused below.
            let sandwich = c.family.sandwichNorms
            return Layer(
                inputNorm: try norm(p + "input_layernorm.weight", c.hiddenSize),
                postNorm: try norm(p + (sandwich ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"), c.hiddenSize),
                attnOutNorm: sandwich ? try norm(p + "post_attention_layernorm.weight", c.hiddenSize) : nil,
                mlpOutNorm: sandwich ? try norm(p + "post_feedforward_layernorm.weight", c.hiddenSize) : nil,
                q: try matrix(p + "self_attn.q_proj.weight", c.qDim, c.hiddenSize),
                k: try matrix(p + "self_attn.k_proj.weight", c.kvDim, c.hiddenSize),
                v: try matrix(p + "self_attn.v_proj.weight", c.kvDim, c.hiddenSize),
                o: try matrix(p + "self_attn.o_proj.weight", c.hiddenSize, c.qDim),
                gate: try matrix(p + "mlp.gate_proj.weight", c.intermediateSize, c.hiddenSize),
                up: try matrix(p + "mlp.up_proj.weight", c.intermediateSize, c.hiddenSize),
                down: try matrix(p + "mlp.down_proj.weight", c.hiddenSize, c.intermediateSize),
                qBias: try bias("self_attn.q_proj.bias", c.qDim, if: c.attentionBias),
                kBias: try bias("self_attn.k_proj.bias", c.kvDim, if: c.attentionBias),
                vBias: try bias("self_attn.v_proj.bias", c.kvDim, if: c.attentionBias),
                oBias: try bias("self_attn.o_proj.bias", c.hiddenSize, if: c.attentionBias && f.info(p + "self_attn.o_proj.bias") != nil),
                qNorm: try bias("self_attn.q_norm.weight", c.headDim, if: c.qkNorm),
                kNorm: try bias("self_attn.k_norm.weight", c.headDim, if: c.qkNorm),
                gateBias: try bias("mlp.gate_proj.bias", c.intermediateSize, if: c.mlpBias),
                upBias: try bias("mlp.up_proj.bias", c.intermediateSize, if: c.mlpBias),
                downBias: try bias("mlp.down_proj.bias", c.hiddenSize, if: c.mlpBias))
        }
        normNames = Set(["model.norm.weight"] + (0..<c.numLayers).flatMap { l in
            ["input_layernorm", "post_attention_layernorm"].map { "model.layers.\(l).\($0).weight" }
                + (c.family.sandwichNorms ? ["pre_feedforward_layernorm", "post_feedforward_layernorm"].map { "model.layers.\(l).\($0).weight" } : [])
                + (c.qkNorm ? ["self_attn.q_norm", "self_attn.k_norm"].map { "model.layers.\(l).\($0).weight" } : [])
        })
        // Every tensor is used: one the forward pass does not read means the file describes a
        // model this runtime would run wrongly.
        if let extra = f.tensors.first(where: { !used.contains($0.name) }) {
            throw SinkKitError(.shapeMismatch, "\(path): tensor \(extra.name) is not part of a \(LlamaConfig.architecture) model with this config (\(f.tensors.count - used.count) unused tensors); refused rather than ignored")
        }
        // Layer weights and the output matrix in the kernel path's layout (a separate input
        // embedding, only ever read by row, keeps SKM's; a tied one is read by row from the x8
        // layout).
        let kernels = sk_kernels_best()!
        // Each matrix's chunks over the load threads: the packed copy's first touch (the kernel
        // zeroing its pages, then the repacking) is most of a big model's load, and it spreads over
        // the cores (7B int4-sym, 2 threads: time to first token 4.2-4.5 → 2.3-2.7 s). Each chunk's
        // bytes are the same at any thread count.
        let pt = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        for l in layers { for w in [l.q, l.k, l.v, l.o, l.gate, l.up, l.down] { w.packForKernels(kernels, file: f, threads: pt) } }
        head.packForKernels(kernels, file: f, threads: pt)
    }
}
