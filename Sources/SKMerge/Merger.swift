import Foundation
import SKCore
import SKModel
import SKSafetensors

/// Merges PEFT LoRA adapters (and LongLoRA's `trainable_params.bin`) into a Hugging Face
/// LLaMA checkpoint, streaming one tensor at a time.
///
/// Order of operations for every output tensor, which is the order LongLoRA's merge applies:
/// 1. the base tensor, or its replacement from `--trainable-params`;
/// 2. vocabulary growth: when a replacement has more vocabulary rows than the base, every other
///    vocabulary-sized tensor gains rows equal to the mean of its existing rows;
/// 3. each adapter in command-line order: its saved whole tensors (`modules_to_save`, trained
///    biases) replace the current ones, then its LoRA delta is added (or DoRA applied).
/// All arithmetic is f32; the result is refused if any element is NaN or Inf.
public struct Merger {
    public let job: MergeJob
    public init(job: MergeJob) { self.job = job }

    public static let toolVersion = "sinkkit 0.1.0"
    static let tokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                 "tokenizer.model", "added_tokens.json", "vocab.json", "merges.txt"]

    /// Runs the merge. On any error nothing is left at the output path.
    public func run(progress: MergeProgress? = nil) throws -> MergeReport {
        let fm = FileManager.default
        let out = job.outputDirectory
        try AtomicOutput.checkDestination(out, force: job.force)
        let outURL = URL(fileURLWithPath: out).standardizedFileURL.path
        for input in [job.baseDirectory] + job.adapterDirectories {
            if URL(fileURLWithPath: input).standardizedFileURL.path == outURL {
                throw SinkKitError(.invalidArgument, "--output \(out) is one of the inputs; inputs are never modified")
            }
        }
        let tmp = AtomicOutput.temporaryPath(for: out)
        do {
            try fm.createDirectory(atPath: tmp, withIntermediateDirectories: false)
        } catch {
            throw SinkKitError(.io, "cannot create \(tmp): \(error.localizedDescription)")
        }
        do {
            let report = try merge(into: tmp, progress: progress)
            try AtomicOutput.commit(temporary: tmp, to: out, force: job.force)
            return report
        } catch {
            AtomicOutput.discard(tmp)
            throw error
        }
    }

    private func merge(into dir: String, progress: MergeProgress?) throws -> MergeReport {
        var report = MergeReport()
        let config = try LlamaConfig(path: job.baseDirectory + "/config.json")
        let base = try ShardedCheckpoint(directory: job.baseDirectory)
        let extras = try LlamaTensors.validate(names: base.tensorNames, shape: { base.info($0)?.shape },
                                               dtype: { base.info($0)?.dtype }, config: config, source: job.baseDirectory)
        if !extras.isEmpty {
            report.warnings.append("base has tensors a LLaMA config does not describe; copied unchanged: \(extras.prefix(5).joined(separator: ", "))\(extras.count > 5 ? ", …" : "")")
        }
        let baseNames = Set(base.tensorNames)

        // --trainable-params: whole tensors, names with or without the PEFT prefix.
        var trainable: (source: TensorSource, map: [String: String])?
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
        }
        let adapters = try job.adapterDirectories.map { try Adapter(directory: $0) }

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
        report.previousVocabSize = config.vocabSize
        report.vocabSize = vocab
        func expectedShape(_ name: String) -> [Int] {
            var s = base.info(name)!.shape
            if LlamaTensors.isVocabSized(name) { s[0] = vocab }
            return s
        }

        // LoRA modules: each must exist in the base, be targeted by the config, and have
        // factors whose shapes fit; every targeted module must have factors.
        for a in adapters {
            let baseModules = baseNames.filter { $0.hasSuffix(".weight") && base.info($0)!.shape.count == 2 }
                .map { String($0.dropLast(".weight".count)) }
            for (m, l) in a.modules {
                let wName = m + ".weight"
                guard baseNames.contains(wName) else {
                    throw SinkKitError(.adapter, "\(a.weightsPath): LoRA module \(m) does not exist in the base model (adapter for another model?)")
                }
                guard try a.config.targets(module: m, isOutputHead: m == "lm_head") || a.config.modulesToSave.contains(where: { m.hasSuffix($0) }) else {
                    throw SinkKitError(.adapter, "\(a.weightsPath): module \(m) has LoRA weights but target_modules does not select it")
                }
                let w = expectedShape(wName)
                let (r, _) = a.config.rankAndAlpha(module: m)
                func shape(_ k: String) -> [Int] { a.tensors.info(k)!.shape }
                if l.isEmbedding {
                    guard m.hasSuffix("embed_tokens") else { throw SinkKitError(.adapter, "\(a.weightsPath): lora_embedding on \(m), which is not an embedding") }
                    let (sa, sb) = (shape(l.embeddingA!), shape(l.embeddingB!))
                    guard sa == [r, w[0]], sb == [w[1], r] else {
                        throw SinkKitError(.shapeMismatch, "\(a.weightsPath): \(m) lora_embedding_A \(sa) / lora_embedding_B \(sb) do not fit embedding \(w) with r=\(r) (expected [\(r), \(w[0])] and [\(w[1]), \(r)])")
                    }
                } else {
                    if a.config.fanInFanOut && !report.warnings.contains(where: { $0.contains("fan_in_fan_out") }) {
                        report.warnings.append("\(a.directory): fan_in_fan_out=True is ignored for LLaMA's nn.Linear layers (as PEFT does); weights are not transposed")
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

        // Config changes.
        var outConfig = config
        if vocab != config.vocabSize { outConfig.raw["vocab_size"] = vocab }
        if let n = job.context {
            switch try RopeContext.plan(context: n, config: config) {
            case .unchanged(let why): report.warnings.append(why)
            case .linear(let f):
                if config.usesRopeParameters, var rp = config.raw["rope_parameters"] as? [String: Any] {
                    rp["rope_type"] = "linear"
                    rp["factor"] = f
                    outConfig.raw["rope_parameters"] = rp
                } else {
                    outConfig.raw["rope_scaling"] = ["type": "linear", "rope_type": "linear", "factor": f]
                }
                report.ropeScalingWritten = f
            }
        }
        if let d = job.dtype, let t = d.torchName {
            if outConfig.raw["torch_dtype"] != nil || outConfig.raw["dtype"] == nil { outConfig.raw["torch_dtype"] = t }
            if outConfig.raw["dtype"] != nil { outConfig.raw["dtype"] = t }
        }

        // Write the weights, one tensor at a time.
        let names = base.tensorNames
        let entries = names.map { n -> SafetensorsWriter.Entry in
            let stored = base.info(n)!.dtype
            return SafetensorsWriter.Entry(name: n, dtype: stored.isFloatWeight ? (job.dtype ?? stored) : stored, shape: expectedShape(n))
        }
        let provenance = try provenanceJSON(adapters: adapters, report: report)
        let writer = try SafetensorsWriter(path: dir + "/model.safetensors", entries: entries,
                                           metadata: ["format": "pt", "sinkkit": provenance])
        for (i, e) in writer.order.enumerated() {
            let name = e.name
            guard base.info(name)!.dtype.isFloatWeight else {
                // Integer buffers (rare in LLaMA checkpoints) are copied byte for byte.
                let f = base.file(for: name)!
                try writer.write(name: name, bytes: try f.rawBytes(name))
                f.release(name)
                progress?(i + 1, writer.order.count, name)
                continue
            }
            var t: Tensor
            if let tr = trainable, let key = tr.map[name] {
                t = try tr.source.loadF32(key)
                report.tensorsReplaced += 1
            } else {
                t = try base.loadF32(name)
            }
            if LlamaTensors.isVocabSized(name) { LoraMath.growRowsWithMean(&t, rows: vocab) }
            for a in adapters {
                if let key = a.replacements[name] {
                    t = try a.tensors.loadF32(key)
                    if LlamaTensors.isVocabSized(name) { LoraMath.growRowsWithMean(&t, rows: vocab) }
                    report.tensorsReplaced += 1
                }
                let module = name.hasSuffix(".weight") ? String(name.dropLast(7)) : name.hasSuffix(".bias") ? String(name.dropLast(5)) : name
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
                report.loraModulesMerged += 1
            }
            if let bad = t.firstNonFinite() {
                throw SinkKitError(.nonFinite, "merged tensor \(name) has a non-finite value (\(t.data[bad])) at element \(bad); refusing to write it")
            }
            report.largestTensorBytes = max(report.largestTensorBytes, base.info(name)!.byteCount)
            try writer.write(name: name, tensor: t)
            report.tensorsWritten += 1
            progress?(i + 1, writer.order.count, name)
        }
        try writer.finish()
        report.outputBytes = (try? FileManager.default.attributesOfItem(atPath: dir + "/model.safetensors")[.size] as? Int) ?? 0

        try outConfig.jsonData().write(to: URL(fileURLWithPath: dir + "/config.json"))
        try copyTokenizer(adapters: adapters, into: dir)
        if FileManager.default.fileExists(atPath: job.baseDirectory + "/generation_config.json") {
            try copy(job.baseDirectory + "/generation_config.json", to: dir + "/generation_config.json")
        }
        report.peakResidentBytes = ProcessMemory.peakResidentBytes()
        return report
    }

    /// Tokenizer files come from the last adapter directory that ships them (fine-tunes that
    /// add `[PAD]` ship their tokenizer), else from the base.
    private func copyTokenizer(adapters: [Adapter], into dir: String) throws {
        let fm = FileManager.default
        let source = adapters.last(where: { a in Self.tokenizerFiles.contains { fm.fileExists(atPath: a.directory + "/" + $0) } })?.directory
            ?? job.baseDirectory
        for f in Self.tokenizerFiles where fm.fileExists(atPath: source + "/" + f) {
            try copy(source + "/" + f, to: dir + "/" + f)
        }
    }

    private func copy(_ from: String, to: String) throws {
        do { try FileManager.default.copyItem(atPath: from, toPath: to) } catch {
            throw SinkKitError(.io, "cannot copy \(from) to \(to): \(error.localizedDescription)")
        }
    }

    /// The record of how the model was made, stored in the safetensors `__metadata__`.
    private func provenanceJSON(adapters: [Adapter], report: MergeReport) throws -> String {
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
        var p: [String: Any] = ["tool": Self.toolVersion, "adapters": adapterInfo, "arithmetic": "f32"]
        if let tp = job.trainableParamsPath {
            p["trainable_params"] = ["path": tp, "sha256": try SHA256.hexDigest(ofFile: tp)]
        }
        if let c = job.context { p["context"] = c }
        if let d = job.dtype { p["dtype"] = d.rawValue }
        let data = try JSONSerialization.data(withJSONObject: p, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
