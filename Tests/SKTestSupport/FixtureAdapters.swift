import Foundation
import SKCore
import SKSafetensors

extension Fixture {
    /// The `embedding` fixture adapter without the `embed_tokens.base_layer.weight` PEFT saved
    /// beside it (a whole-tensor replacement, equal to the base's embedding): what an adapter
    /// whose vocabulary was not resized holds, so the embedding is merged as a plain LoRA delta.
    public static func embeddingLoraOnly() throws -> String {
        let dir = scratch() + "/embedding-lora-only"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let src = adapter("embedding")
        try FileManager.default.copyItem(atPath: src + "/adapter_config.json", toPath: dir + "/adapter_config.json")
        let f = try SafetensorsFile(path: src + "/adapter_model.safetensors")
        let keep = f.tensorNames.filter { !$0.contains(".base_layer.") }
        let w = try SafetensorsWriter(path: dir + "/adapter_model.safetensors",
                                      entries: try keep.map { .init(name: $0, dtype: .F32, shape: try f.loadF32($0).shape) }, metadata: ["format": "pt"])
        for e in w.order { try w.write(name: e.name, tensor: try f.loadF32(e.name)) }
        try w.finish()
        return dir
    }
}
