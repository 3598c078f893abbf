import Foundation
import SKCore
import SKFormat
import SKKernels

/// An SKM model mapped for inference: config, tokenizer metadata and weight views.
public final class LlamaModel {
    public struct Layer {
        let inputNorm: [Float]
        let postNorm: [Float]
        let q, k, v, o, gate, up, down: WeightMatrix
        let qBias, kBias, vBias, oBias: [Float]?
    }

    public let file: SKMFile
    public let config: ModelConfig
    public let layers: [Layer]
    public let embedding: WeightMatrix
    public let head: WeightMatrix
    public let finalNorm: [Float]

    public init(path: String, verify: Bool = false) throws {
        file = try SKMFile(path: path, verify: verify)
        config = try ModelConfig(metadata: file.metadata, path: path)
        let c = config, f = file
        func info(_ name: String) throws -> SKMTensorInfo {
            guard let t = f.info(name) else { throw SinkKitError(.shapeMismatch, "\(path): tensor \(name) is missing") }
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
        embedding = try matrix("model.embed_tokens.weight", c.vocabSize, c.hiddenSize)
        head = c.tieWordEmbeddings ? embedding : try matrix("lm_head.weight", c.vocabSize, c.hiddenSize)
        finalNorm = try vector("model.norm.weight", c.hiddenSize)
        layers = try (0..<c.numLayers).map { l in
            let p = "model.layers.\(l)."
            func bias(_ n: String, _ size: Int) throws -> [Float]? { f.info(p + n) == nil ? nil : try vector(p + n, size) }
            return Layer(
                inputNorm: try vector(p + "input_layernorm.weight", c.hiddenSize),
                postNorm: try vector(p + "post_attention_layernorm.weight", c.hiddenSize),
                q: try matrix(p + "self_attn.q_proj.weight", c.qDim, c.hiddenSize),
                k: try matrix(p + "self_attn.k_proj.weight", c.kvDim, c.hiddenSize),
                v: try matrix(p + "self_attn.v_proj.weight", c.kvDim, c.hiddenSize),
                o: try matrix(p + "self_attn.o_proj.weight", c.hiddenSize, c.qDim),
                gate: try matrix(p + "mlp.gate_proj.weight", c.intermediateSize, c.hiddenSize),
                up: try matrix(p + "mlp.up_proj.weight", c.intermediateSize, c.hiddenSize),
                down: try matrix(p + "mlp.down_proj.weight", c.hiddenSize, c.intermediateSize),
                qBias: try bias("self_attn.q_proj.bias", c.qDim), kBias: try bias("self_attn.k_proj.bias", c.kvDim),
                vBias: try bias("self_attn.v_proj.bias", c.kvDim), oBias: try bias("self_attn.o_proj.bias", c.hiddenSize))
        }
        // Layer weights in the kernel path's layout (the embedding, read by row, keeps SKM's).
        let kernels = sk_kernels_best()!
        // (serial: two workers measured slower, 0.17 vs 0.12-0.16 s, page faults on one mapping)
        for l in layers { for w in [l.q, l.k, l.v, l.o, l.gate, l.up, l.down] { w.packForKernels(kernels, file: f) } }
    }
}
