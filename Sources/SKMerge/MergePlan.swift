import Foundation
import SKCore
import SKModel
import SKGGUF
import SKSafetensors

/// Everything a merge needs, opened and validated before any output is written, and the
/// per-tensor merge itself. `skconv merge` writes its tensors to safetensors; `skconv quantize`
/// feeds them straight to the quantizer, so an edge user never writes the float model to disk.
///
/// Order of operations for every output tensor, which is the order LongLoRA's merge applies:
/// 1. the base tensor, or its replacement from `--trainable-params`;
/// 2. vocabulary growth: when a replacement has more vocabulary rows than the base, every other
///    vocabulary-sized tensor gains rows equal to the mean of its existing rows;
/// 3. each adapter in command-line order: its saved whole tensors (`modules_to_save`, trained
///    biases) replace the current ones, then its LoRA delta is added (or DoRA applied).
/// All arithmetic is f32; a result with NaN or Inf is refused with the tensor's name.
public final class MergePlan {
    public let job: MergeJob
    public let config: LlamaConfig
    /// The base's tensors: a Hugging Face directory (`checkpoint`) or a GGUF file (`gguf`).
    public let base: TensorSource
    public let checkpoint: ShardedCheckpoint?
    public let gguf: GGUFBase?
    public let adapters: [Adapter]
    /// config.json of the result (vocab_size, RoPE scaling, dtype updated).
    public private(set) var outputConfig: LlamaConfig
    /// Rows of every vocabulary-sized tensor in the result.
    public let vocabSize: Int
    public private(set) var warnings: [String] = []
    /// Base tensors a LLaMA config does not describe (a merge copies them unchanged).
    public let extraTensors: [String]
    public private(set) var ropeScalingWritten: Double?
    let trainable: (source: TensorSource, map: [String: String])?

    /// Tensor names of the result, in the base's order.
    public var tensorNames: [String] { base.tensorNames }

    public init(job: MergeJob) throws {
        self.job = job
        if GGUFFile.isGGUF(job.baseDirectory) {
            let g = try GGUFBase(path: job.baseDirectory)
            config = try LlamaConfig(data: Data(try g.configJSON().utf8), path: job.baseDirectory + " (metadata as config.json)")
            base = g
            gguf = g
            checkpoint = nil
        } else {
            config = try LlamaConfig(path: job.baseDirectory + "/config.json")
            let ck = try ShardedCheckpoint(directory: job.baseDirectory)
            base = ck
            checkpoint = ck
            gguf = nil
        }
        let base = self.base, config = self.config
        let extras = try LlamaTensors.validate(names: base.tensorNames, shape: { base.info($0)?.shape },
                                               dtype: { base.info($0)?.dtype }, config: config, source: job.baseDirectory)
        extraTensors = extras
        if !extras.isEmpty {
            warnings.append("base has tensors a LLaMA config does not describe; copied unchanged: \(extras.prefix(5).joined(separator: ", "))\(extras.count > 5 ? ", …" : "")")
        }
        let baseNames = Set(base.tensorNames)

        // --trainable-params: whole tensors, names with or without the PEFT prefix.
        if let tp = job.trainableParamsPath {
            let src = try openTensorFile(tp)
            var map: [String: String] = [:]
            for key in src.tensorNames {
                let name = key.hasPrefix(Adapter.prefix) ? String(key.dropFirst(Adapter.prefix.count)) : key
                guard baseNames.contains(name) else {
                    throw SinkKitError(.adapter, "\(tp): tensor \(key) has no counterpart \(name) in the base model")
                }
                map[name] = key
            }
            trainable = (src, map)
        } else {
            trainable = nil
        }
        adapters = try job.adapterDirectories.map { try Adapter(directory: $0) }

        // Vocabulary: the largest row count among whole-tensor replacements of vocab tensors.
        var vocab = config.vocabSize
        func checkReplacement(_ src: TensorSource, _ key: String, for name: String) throws {
            let want = base.info(name)!.shape
            let got = src.info(key)!.shape
            if LlamaTensors.isVocabSized(name), got.count == 2, got[1] == want[1], got[0] >= want[0] {
                vocab = max(vocab, got[0])
                return
            }
            guard got == want else {
                throw SinkKitError(.shapeMismatch, "\(src.sourceDescription): \(key) has shape \(got), the base's \(name) has \(want)")
            }
        }
        if let t = trainable { for (name, key) in t.map { try checkReplacement(t.source, key, for: name) } }
        for a in adapters {
            for (name, key) in a.replacements {
                guard baseNames.contains(name) else {
                    throw SinkKitError(.adapter, "\(a.weightsPath): saved tensor \(key) has no counterpart \(name) in the base model (adapter for another model?)")
                }
                try checkReplacement(a.tensors, key, for: name)
            }
        }
        vocabSize = vocab
        outputConfig = config
        try validateLoraModules()

        // Config changes.
        if vocab != config.vocabSize { outputConfig.raw["vocab_size"] = vocab }
        if let n = job.context {
            switch try RopeContext.plan(context: n, config: config) {
            case .unchanged(let why): warnings.append(why)
            case .linear(let f):
                if config.usesRopeParameters, var rp = config.raw["rope_parameters"] as? [String: Any] {
                    rp["rope_type"] = "linear"
                    rp["factor"] = f
                    outputConfig.raw["rope_parameters"] = rp
                } else {
                    outputConfig.raw["rope_scaling"] = ["type": "linear", "rope_type": "linear", "factor": f]
                }
                outputConfig.ropeScaling = RopeScaling(type: "linear", factor: f)
                ropeScalingWritten = f
            }
        }
        outputConfig.vocabSize = vocab
        if let d = job.dtype, let t = d.torchName {
            if outputConfig.raw["torch_dtype"] != nil || outputConfig.raw["dtype"] == nil { outputConfig.raw["torch_dtype"] = t }
            if outputConfig.raw["dtype"] != nil { outputConfig.raw["dtype"] = t }
        }
    }

    /// Each LoRA module must exist in the base, be selected by the config, and have factors
    /// whose shapes fit; every selected module must have factors.
    private func validateLoraModules() throws {
        let baseNames = Set(base.tensorNames)
        let baseModules = baseNames.filter { $0.hasSuffix(".weight") && base.info($0)!.shape.count == 2 }
            .map { String($0.dropLast(".weight".count)) }
        for a in adapters {
            for (m, l) in a.modules {
                let wName = m + ".weight"
                guard baseNames.contains(wName) else {
                    let tied = m == "lm_head" && config.tieWordEmbeddings ? " (the base ties lm_head to embed_tokens)" : " (adapter for another model?)"
                    throw SinkKitError(.adapter, "\(a.weightsPath): LoRA module \(m) does not exist in the base model\(tied)")
                }
                guard try a.config.targets(module: m, isOutputHead: m == "lm_head") || a.config.modulesToSave.contains(where: { m.hasSuffix($0) }) else {
                    throw SinkKitError(.adapter, "\(a.weightsPath): module \(m) has LoRA weights but target_modules does not select it")
                }
                let w = outputShape(wName)
                let (r, _) = a.config.rankAndAlpha(module: m)
                func shape(_ k: String) -> [Int] { a.tensors.info(k)!.shape }
                if l.isEmbedding {
                    guard m.hasSuffix("embed_tokens") else { throw SinkKitError(.adapter, "\(a.weightsPath): lora_embedding on \(m), which is not an embedding") }
                    let (sa, sb) = (shape(l.embeddingA!), shape(l.embeddingB!))
                    guard sa == [r, w[0]], sb == [w[1], r] else {
                        throw SinkKitError(.shapeMismatch, "\(a.weightsPath): \(m) lora_embedding_A \(sa) / lora_embedding_B \(sb) do not fit embedding \(w) with r=\(r) (expected [\(r), \(w[0])] and [\(w[1]), \(r)])")
                    }
                } else {
                    if a.config.fanInFanOut && !warnings.contains(where: { $0.contains("fan_in_fan_out") }) {
                        warnings.append("\(a.directory): fan_in_fan_out=True is ignored for LLaMA's nn.Linear layers (as PEFT does); weights are not transposed")
                    }
                    let (sa, sb) = (shape(l.a!), shape(l.b!))
                    guard sa == [r, w[1]], sb == [w[0], r] else {
                        throw SinkKitError(.shapeMismatch, "\(a.weightsPath): \(m) lora_A \(sa) / lora_B \(sb) do not fit weight \(w) with r=\(r) (expected [\(r), \(w[1])] and [\(w[0]), \(r)])")
                    }
                    if let mv = l.magnitude, shape(mv) != [w[0]] {
                        throw SinkKitError(.shapeMismatch, "\(a.weightsPath): \(m) lora_magnitude_vector has shape \(shape(mv)), expected [\(w[0])]")
                    }
                    if let bb = l.bBias {
                        guard baseNames.contains(m + ".bias") else {
                            throw SinkKitError(.refused, "\(a.weightsPath): \(m) has a lora_B bias but the base model has no \(m).bias to merge it into")
                        }
                        guard shape(bb) == [w[0]] else { throw SinkKitError(.shapeMismatch, "\(a.weightsPath): \(m) lora_B.bias has shape \(shape(bb)), expected [\(w[0])]") }
                    }
                }
            }
            for m in baseModules.sorted() where a.modules[m] == nil && a.replacements[m + ".weight"] == nil {
                if try a.config.targets(module: m, isOutputHead: m == "lm_head") {
                    throw SinkKitError(.adapter, "\(a.weightsPath): target_modules selects \(m) but the adapter has no LoRA weights for it (adapter for another model?)")
                }
            }
        }
    }

    /// Shape of a tensor in the result (vocabulary rows grown).
    public func outputShape(_ name: String) -> [Int] {
        var s = base.info(name)!.shape
        if LlamaTensors.isVocabSized(name) { s[0] = vocabSize }
        return s
    }

    /// Whether the base stores this tensor as a float type (others are copied byte for byte).
    public func isFloat(_ name: String) -> Bool { base.info(name)!.dtype.isFloatWeight }

    /// What happened to one tensor.
    public struct TensorOutcome {
        public var loraModulesMerged = 0
        public var replaced = 0
        public init() {}
    }

    /// The LoRA module a tensor belongs to: its name without ".weight" / ".bias".
    static func moduleName(of name: String) -> String {
        name.hasSuffix(".weight") ? String(name.dropLast(7)) : name.hasSuffix(".bias") ? String(name.dropLast(5)) : name
    }

    /// The base checkpoint's file holding `name` when the output tensor is exactly the base
    /// tensor (no trainable-params or adapter replacement, no LoRA module, no vocabulary growth),
    /// so a converter may read it in place instead of through `mergedTensor`; nil otherwise.
    public func unchangedBaseFile(_ name: String) -> SafetensorsFile? {
        isUnchangedBase(name) ? checkpoint?.file(for: name) : nil
    }

    /// Whether the output tensor is exactly the base tensor (see `unchangedBaseFile`).
    public func isUnchangedBase(_ name: String) -> Bool {
        if let tr = trainable, tr.map[name] != nil { return false }
        let module = Self.moduleName(of: name)
        for a in adapters where a.replacements[name] != nil || a.modules[module] != nil { return false }
        guard let info = base.info(name) else { return false }
        if LlamaTensors.isVocabSized(name), info.shape.first ?? 0 < vocabSize { return false }
        return true
    }

    /// The merged tensor, in f32.
    public func mergedTensor(_ name: String, outcome: inout TensorOutcome) throws -> Tensor {
        var t: Tensor
        if let tr = trainable, let key = tr.map[name] {
            t = try tr.source.loadF32(key)
            outcome.replaced += 1
        } else {
            t = try base.loadF32(name)
        }
        if LlamaTensors.isVocabSized(name) { LoraMath.growRowsWithMean(&t, rows: vocabSize) }
        let module = Self.moduleName(of: name)
        for a in adapters {
            if let key = a.replacements[name] {
                t = try a.tensors.loadF32(key)
                if LlamaTensors.isVocabSized(name) { LoraMath.growRowsWithMean(&t, rows: vocabSize) }
                outcome.replaced += 1
            }
            guard let l = a.modules[module] else { continue }
            let scale = Float(a.config.scale(module: module))
            if name.hasSuffix(".bias") {
                if let bb = l.bBias {
                    let bias = try a.tensors.loadF32(bb)
                    for j in 0..<t.count { t.data[j] += scale * bias.data[j] }
                }
                continue
            }
            if l.isEmbedding {
                LoraMath.addEmbeddingDelta(&t, a: try a.tensors.loadF32(l.embeddingA!), b: try a.tensors.loadF32(l.embeddingB!), scale: scale)
            } else if let mv = l.magnitude, a.config.useDora {
                LoraMath.applyDora(&t, a: try a.tensors.loadF32(l.a!), b: try a.tensors.loadF32(l.b!), magnitude: try a.tensors.loadF32(mv), scale: scale)
            } else {
                LoraMath.addLinearDelta(&t, a: try a.tensors.loadF32(l.a!), b: try a.tensors.loadF32(l.b!), scale: scale)
            }
            outcome.loraModulesMerged += 1
        }
        if let bad = t.firstNonFinite() {
            throw SinkKitError(.nonFinite, "merged tensor \(name) has a non-finite value (\(t.data[bad])) at element \(bad); refusing to write it")
        }
        return t
    }

    /// The record of how the model was made (adapter hashes, r, alpha, flags), as JSON.
    public func provenance() throws -> [String: Any] {
        var adapterInfo: [[String: Any]] = []
        for a in adapters {
            var d: [String: Any] = [
                "path": a.directory,
                "file": URL(fileURLWithPath: a.weightsPath).lastPathComponent,
                "sha256": try SHA256.hexDigest(ofFile: a.weightsPath),
                "config_sha256": try SHA256.hexDigest(ofFile: a.directory + "/adapter_config.json"),
                "r": a.config.r, "lora_alpha": a.config.loraAlpha,
                "use_rslora": a.config.useRslora, "use_dora": a.config.useDora,
                "lora_modules": a.modules.count, "saved_tensors": a.replacements.keys.sorted(),
            ]
            if !a.config.rankPattern.isEmpty { d["rank_pattern"] = Dictionary(uniqueKeysWithValues: a.config.rankPattern) }
            if !a.config.alphaPattern.isEmpty { d["alpha_pattern"] = Dictionary(uniqueKeysWithValues: a.config.alphaPattern) }
            if let b = a.config.baseModelName { d["base_model_name_or_path"] = b }
            adapterInfo.append(d)
        }
        var p: [String: Any] = ["tool": Merger.toolVersion, "adapters": adapterInfo, "arithmetic": "f32"]
        if let tp = job.trainableParamsPath {
            p["trainable_params"] = ["path": tp, "sha256": try SHA256.hexDigest(ofFile: tp)]
        }
        if let c = job.context { p["context"] = c }
        if let d = job.dtype { p["dtype"] = d.rawValue }
        return p
    }

    /// Where the tokenizer files come from: the last adapter directory that ships them
    /// (fine-tunes that add `[PAD]` ship their tokenizer), else the base.
    public var tokenizerDirectory: String {
        let fm = FileManager.default
        return adapters.last(where: { a in Merger.tokenizerFiles.contains { fm.fileExists(atPath: a.directory + "/" + $0) } })?.directory
            ?? job.baseDirectory
    }
}
