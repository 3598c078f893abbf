import Foundation
import SKCore
import SKSafetensors

/// Opens a tensor file by content: safetensors, or a torch.save zip archive.
public func openTensorFile(_ path: String) throws -> TensorSource {
    let f = try MappedFile(path: path)
    if f.size >= 4, try f.bytes(offset: 0, count: 4).elementsEqual([0x50, 0x4B, 0x03, 0x04]) {
        return try TorchCheckpoint(path: path)
    }
    if path.hasSuffix(".bin") || path.hasSuffix(".pt") || path.hasSuffix(".pth") {
        return try TorchCheckpoint(path: path)
    }
    return try SafetensorsFile(path: path)
}

/// The LoRA weights PEFT stores for one module.
public struct LoraModule {
    public let module: String           // e.g. model.layers.0.self_attn.q_proj
    public var a: String?               // lora_A.weight [r, in]
    public var b: String?               // lora_B.weight [out, r]
    public var embeddingA: String?      // lora_embedding_A [r, vocab]
    public var embeddingB: String?      // lora_embedding_B [hidden, r]
    public var magnitude: String?       // lora_magnitude_vector [out] (DoRA)
    public var bBias: String?           // lora_B.bias [out] (lora_bias=True)

    public var isEmbedding: Bool { embeddingA != nil || embeddingB != nil }
}

/// A PEFT LoRA adapter directory: its config and its tensors, sorted by what they do.
public final class Adapter {
    public let directory: String
    public let weightsPath: String
    public let config: AdapterConfig
    public let tensors: TensorSource
    /// LoRA factors per module, keyed by module name.
    public private(set) var modules: [String: LoraModule] = [:]
    /// Whole tensors that replace the base's (`modules_to_save`, trained biases), keyed by
    /// base tensor name, valued by adapter tensor name.
    public private(set) var replacements: [String: String] = [:]

    static let prefix = "base_model.model."

    public init(directory: String) throws {
        self.directory = directory
        let fm = FileManager.default
        config = try AdapterConfig(path: directory + "/adapter_config.json")
        let st = directory + "/adapter_model.safetensors", bin = directory + "/adapter_model.bin"
        if fm.fileExists(atPath: st) { weightsPath = st }
        else if fm.fileExists(atPath: bin) { weightsPath = bin }
        else { throw SinkKitError(.io, "\(directory): no adapter_model.safetensors or adapter_model.bin") }
        tensors = try openTensorFile(weightsPath)

        for key in tensors.tensorNames {
            guard key.hasPrefix(Self.prefix) else {
                throw SinkKitError(.adapter, "\(weightsPath): tensor \(key) does not start with \(Self.prefix) (not a PEFT LoRA adapter of a causal LM)")
            }
            var name = String(key.dropFirst(Self.prefix.count))
            // PEFT strips the adapter name; tolerate files that kept ".default".
            name = name.replacingOccurrences(of: ".default.", with: ".")
            if name.hasSuffix(".default") { name = String(name.dropLast(".default".count)) }
            func module(_ suffix: String) -> String? {
                name.hasSuffix(suffix) ? String(name.dropLast(suffix.count)) : nil
            }
            if let m = module(".lora_A.weight") { modules[m, default: LoraModule(module: m)].a = key }
            else if let m = module(".lora_B.weight") { modules[m, default: LoraModule(module: m)].b = key }
            else if let m = module(".lora_B.bias") { modules[m, default: LoraModule(module: m)].bBias = key }
            else if let m = module(".lora_embedding_A") { modules[m, default: LoraModule(module: m)].embeddingA = key }
            else if let m = module(".lora_embedding_B") { modules[m, default: LoraModule(module: m)].embeddingB = key }
            else if let m = module(".lora_magnitude_vector.weight") ?? module(".lora_magnitude_vector") {
                modules[m, default: LoraModule(module: m)].magnitude = key
            } else if name.contains("lora_") {
                throw SinkKitError(.adapter, "\(weightsPath): unrecognised LoRA tensor \(key)")
            } else {
                // modules_to_save copies, and the base layer PEFT saves beside embedding LoRA
                // (`embed_tokens.base_layer.weight`, in case the vocabulary was resized).
                let base = name.replacingOccurrences(of: ".modules_to_save.", with: ".")
                    .replacingOccurrences(of: ".base_layer.", with: ".")
                replacements[base] = key
            }
        }
        for (m, l) in modules {
            if l.isEmbedding {
                guard l.embeddingA != nil, l.embeddingB != nil, l.a == nil, l.b == nil else {
                    throw SinkKitError(.adapter, "\(weightsPath): module \(m) needs both lora_embedding_A and lora_embedding_B")
                }
                if l.magnitude != nil {
                    throw SinkKitError(.refused, "\(weightsPath): DoRA on the embedding \(m) is not supported; merge refused")
                }
            } else {
                guard l.a != nil, l.b != nil else {
                    throw SinkKitError(.adapter, "\(weightsPath): module \(m) needs both lora_A.weight and lora_B.weight")
                }
            }
            if config.useDora && l.magnitude == nil && !l.isEmbedding {
                throw SinkKitError(.adapter, "\(weightsPath): use_dora is set but module \(m) has no lora_magnitude_vector")
            }
            if l.bBias != nil && !config.loraBias {
                throw SinkKitError(.adapter, "\(weightsPath): module \(m) has lora_B.bias but lora_bias is not set in the config")
            }
        }
        if modules.isEmpty && replacements.isEmpty {
            throw SinkKitError(.adapter, "\(weightsPath): adapter holds no LoRA or saved tensors")
        }
    }
}
