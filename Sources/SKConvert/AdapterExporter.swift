import Foundation
import SKCore
import SKFormat
import SKMerge
import SKModel
import SKQuant

/// `skconv adapter`: a PEFT LoRA adapter (and LongLoRA's trained embeddings and norms) as an SKM
/// adapter file that `skrun --lora` applies at run time on top of a quantized base, y = W·x +
/// B·(A·x), in f32: the fine-tune's delta is never rounded into 4-bit blocks. (Formats/SKM.md,
/// "Adapter files".)
///
/// Contents: for each LoRA module M, `M.lora_a` [r, in] and `M.lora_b` [out, r] in F32 with
/// PEFT's scale (alpha/r, rsLoRA's alpha/√r, rank and alpha patterns) folded into B, and
/// `M.lora_bias` [out] for lora_bias; an embedding LoRA as `model.embed_tokens.lora_a` [r, vocab]
/// and `.lora_b` [hidden, r]; whole replacement tensors (trainable params, modules_to_save) under
/// the base's names (norms F32, matrices F16 by default, or F32 / int8). Metadata: `model.architecture` "lora",
/// `lora.base_config` (the base's config.json: the runtime checks the shapes match), provenance.
public struct AdapterExporter {
    public let baseDirectory: String
    public let adapterDirectory: String
    public let trainableParamsPath: String?
    public let output: String
    public let force: Bool
    /// Storage of whole replacement matrices (a trained embedding, modules_to_save): f16 by default.
    public let matrixType: QuantType

    public init(baseDirectory: String, adapterDirectory: String, trainableParamsPath: String?, output: String, force: Bool,
                matrixType: QuantType = .f16) {
        self.matrixType = matrixType
        self.baseDirectory = baseDirectory
        self.adapterDirectory = adapterDirectory
        self.trainableParamsPath = trainableParamsPath
        self.output = output
        self.force = force
    }

    public struct Report { public var modules = 0; public var replaced = 0; public var fileBytes = 0; public var warnings: [String] = [] }

    public func run() throws -> Report {
        let job = MergeJob(baseDirectory: baseDirectory, adapterDirectories: [adapterDirectory], trainableParamsPath: trainableParamsPath,
                           outputDirectory: output)
        let target = try OutputTarget(output, kind: .file, inputs: job.inputPaths, force: force)
        let plan = try MergePlan(job: job)
        guard plan.vocabSize == plan.config.vocabSize else {
            throw SinkKitError(.refused, "the fine-tune grows the vocabulary (\(plan.config.vocabSize) → \(plan.vocabSize)): a run-time adapter cannot add embedding rows to a base; merge it instead (skconv quantize --adapter)")
        }
        let adapter = plan.adapters[0]
        guard !adapter.config.useDora else {
            throw SinkKitError(.refused, "\(adapterDirectory): DoRA rescales whole weight rows by their norms; it cannot be applied at run time (merge it with skconv quantize --adapter)")
        }
        var report = Report()
        report.warnings = plan.warnings
        var tensors: [(SKMTensorInfo, [UInt8])] = []
        func f32(_ name: String, _ t: Tensor, scale: Float = 1) {
            var out = [UInt8](repeating: 0, count: 4 * t.count)
            out.withUnsafeMutableBytes { d in
                for (i, v) in t.data.enumerated() { d.storeBytes(of: (v * scale).bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
            }
            tensors.append((SKMTensorInfo(name: name, type: .f32, group: 0, shape: t.shape), out))
        }
        let fused = LlamaTensors.fusedParts(plan.config)
        for m in adapter.modules.keys.sorted() {
            let l = adapter.modules[m]!
            let scale = Float(adapter.config.scale(module: m))
            if l.isEmbedding {
                f32(m + ".lora_a", try adapter.tensors.loadF32(l.embeddingA!))
                f32(m + ".lora_b", try adapter.tensors.loadF32(l.embeddingB!), scale: scale)
            } else if let parts = fused[m + ".weight"] {
                // A fused module (Phi-3's qkv_proj, gate_up_proj): one pair per part the runtime
                // reads, A shared, B's rows (and a lora_bias's) split like the weight's.
                let a = try adapter.tensors.loadF32(l.a!), bt = try adapter.tensors.loadF32(l.b!), r = bt.shape[1]
                let bias = try l.bBias.map { try adapter.tensors.loadF32($0) }
                for p in parts {
                    let part = String(p.name.dropLast(".weight".count))
                    f32(part + ".lora_a", a)
                    f32(part + ".lora_b", Tensor(shape: [p.rows.count, r], data: Array(bt.data[(p.rows.lowerBound * r)..<(p.rows.upperBound * r)])), scale: scale)
                    if let bias { f32(part + ".lora_bias", Tensor(shape: [p.rows.count], data: Array(bias.data[p.rows])), scale: scale) }
                }
            } else {
                f32(m + ".lora_a", try adapter.tensors.loadF32(l.a!))
                f32(m + ".lora_b", try adapter.tensors.loadF32(l.b!), scale: scale)
                if let bb = l.bBias { f32(m + ".lora_bias", try adapter.tensors.loadF32(bb), scale: scale) }
            }
            report.modules += 1
        }
        // Whole replacements: trainable params, then the adapter's saved tensors (later wins).
        var replaced: [String: Tensor] = [:]
        if let tp = trainableParamsPath {
            let src = try openTensorFile(tp)
            for key in src.tensorNames {
                let name = key.hasPrefix("base_model.model.") ? String(key.dropFirst("base_model.model.".count)) : key
                replaced[name] = try src.loadF32(key)
            }
        }
        for (name, key) in adapter.replacements { replaced[name] = try adapter.tensors.loadF32(key) }
        for name in replaced.keys.sorted() {
            let t = replaced[name]!
            if let bad = t.firstNonFinite() { throw SinkKitError(.nonFinite, "\(name): non-finite value at element \(bad)") }
            if t.shape.count == 1 || matrixType == .f32 {
                f32(name, t)
            } else if matrixType == .f16 {
                var out = [UInt8](repeating: 0, count: 2 * t.count)
                try out.withUnsafeMutableBytes { d in try t.data.withUnsafeBufferPointer { try ElementConversion.encode($0, dtype: .F16, into: d.baseAddress!) } }
                guard !out.withUnsafeBytes({ Dequantize.tensor($0, type: .f16, group: 0, rows: 1, cols: t.count) }).contains(where: { !$0.isFinite }) else {
                    throw SinkKitError(.nonFinite, "\(name): values beyond the f16 range; use --matrix-type f32")
                }
                tensors.append((SKMTensorInfo(name: name, type: .f16, group: 0, shape: t.shape), out))
            } else {
                let info = SKMTensorInfo(name: name, type: .int8, group: 32, shape: t.shape)
                var out = [UInt8](repeating: 0, count: QuantType.int8.byteCount(rows: info.rows, cols: info.cols, group: 32)!)
                try t.data.withUnsafeBufferPointer { src in
                    try out.withUnsafeMutableBytes { _ = try BlockQuantizer.quantize(src, rows: info.rows, cols: info.cols, type: .int8, group: 32, into: $0) }
                }
                tensors.append((info, out))
            }
            report.replaced += 1
        }
        for (info, _) in tensors where !info.name.hasSuffix(".lora_a") && !info.name.hasSuffix(".lora_b") && !info.name.hasSuffix(".lora_bias") {
            guard plan.base.info(info.name) != nil else { throw SinkKitError(.adapter, "replacement \(info.name) has no counterpart in the base") }
        }
        let provenance = try plan.provenance()
        let meta: [(String, SKMValue)] = [
            ("model.architecture", .string("lora")),
            ("lora.base_architecture", .string(LlamaConfig.architecture)),
            ("lora.base_config", .string(String(decoding: try plan.config.jsonData(), as: UTF8.self))),
            ("lora.rank", .int(Int64(adapter.config.r))),
            ("provenance.tool", .string(Merger.toolVersion)),
            ("provenance.adapters", .string(try JSONWriter.string(provenance["adapters"] ?? []))),
        ]
        try target.write { tmp in
            let w = try SKMWriter(path: tmp, metadata: meta, tensors: tensors.map(\.0))
            for (info, bytes) in tensors { _ = try bytes.withUnsafeBytes { try w.write(name: info.name, raw: $0) } }
            try w.finish()
            report.fileBytes = (try FileManager.default.attributesOfItem(atPath: tmp)[.size] as? Int) ?? 0
        }
        report.warnings += target.notes
        return report
    }
}
