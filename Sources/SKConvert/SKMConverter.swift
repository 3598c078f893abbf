import Foundation
import SKCore
import SKFormat
import SKMerge
import SKModel
import SKQuant

/// `skconv quantize`: a Hugging Face checkpoint (optionally with adapters merged on the fly,
/// never written to disk as floats) streamed one tensor at a time into a single SKM file with
/// its config, tokenizer and provenance. Quantization uses every core; the file is written
/// under a temporary name and renamed, so a failure (a full disk included) leaves nothing.
public struct SKMConverter {
    public let job: QuantizeJob
    public init(job: QuantizeJob) { self.job = job }

    public func run(progress: QuantizeProgress? = nil) throws -> QuantizeReport {
        let start = Date()
        try AtomicOutput.checkDestination(job.output, force: job.force)
        try Merger.checkNotAnInput(job.output, inputs: [job.modelDirectory] + job.adapterDirectories)
        let recipe = try QuantRecipe(type: job.type, group: job.group, overrides: job.tensorTypes)
        let plan = try MergePlan(job: job.mergeJob)
        var report = QuantizeReport()
        report.warnings = plan.warnings

        // Every tensor's type is decided (and every group checked) before anything is written.
        var infos: [SKMTensorInfo] = []
        for name in plan.tensorNames {
            guard plan.isFloat(name) else {
                throw SinkKitError(.unsupportedDType, "\(name): integer tensors have no SKM type (expected F32, F16 or BF16 weights)")
            }
            let shape = plan.outputShape(name)
            let (t, g) = try recipe.choose(name: name, shape: shape)
            infos.append(SKMTensorInfo(name: name, type: t, group: g, shape: shape))
        }
        var metadata = try ModelMetadata.entries(plan.outputConfig)
        metadata += try TokenizerMetadata.entries(directory: plan.tokenizerDirectory)
        metadata += try provenance(plan: plan, recipe: recipe, infos: infos)

        let tmp = AtomicOutput.temporaryPath(for: job.output)
        do {
            let writer = try SKMWriter(path: tmp, metadata: metadata, tensors: infos, compressionLevel: job.compressionLevel)
            var byKey: [String: TypeSummary] = [:]
            for (i, info) in infos.enumerated() {
                var outcome = MergePlan.TensorOutcome()
                let t = try plan.mergedTensor(info.name, outcome: &outcome)
                report.loraModulesMerged += outcome.loraModulesMerged
                let (raw, sse) = try encode(t, info)
                let stored = try raw.withUnsafeBytes { try writer.write(name: info.name, raw: $0) }
                let key = "\(info.type.userName):\(info.group)"
                var s = byKey[key] ?? TypeSummary(type: info.type, group: info.group)
                s.tensors += 1
                s.parameters += t.count
                s.rawBytes += raw.count
                s.storedBytes += stored
                s.squaredError += sse
                s.squaredValue += t.data.reduce(0.0) { $0 + Double($1) * Double($1) }
                byKey[key] = s
                report.parameters += t.count
                progress?(i + 1, infos.count, info.name)
            }
            try writer.finish()
            report.summaries = byKey.values.sorted { ($0.type.rawValue, $0.group) < ($1.type.rawValue, $1.group) }
            report.fileBytes = (try FileManager.default.attributesOfItem(atPath: tmp)[.size] as? Int) ?? 0
            try AtomicOutput.commit(temporary: tmp, to: job.output, force: job.force)
        } catch {
            AtomicOutput.discard(tmp)
            throw error
        }
        report.peakResidentBytes = ProcessMemory.peakResidentBytes()
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    /// Raw SKM bytes of one tensor and the squared round-trip error.
    func encode(_ t: Tensor, _ info: SKMTensorInfo) throws -> ([UInt8], Double) {
        switch info.type {
        case .f32:
            var out = [UInt8](repeating: 0, count: 4 * t.count)
            try out.withUnsafeMutableBytes { d in try t.data.withUnsafeBufferPointer { try ElementConversion.encode($0, dtype: .F32, into: d.baseAddress!) } }
            return (out, 0)
        case .f16:
            var out = [UInt8](repeating: 0, count: 2 * t.count)
            try out.withUnsafeMutableBytes { d in try t.data.withUnsafeBufferPointer { try ElementConversion.encode($0, dtype: .F16, into: d.baseAddress!) } }
            var sse = 0.0
            for v in t.data { let r = Double(HalfFloat.f16ToF32(HalfFloat.f32ToF16(v))) - Double(v); sse += r * r }
            return (out, sse)
        case .int8, .int4, .int4Sym:
            var out = [UInt8](repeating: 0, count: info.type.byteCount(rows: info.rows, cols: info.cols, group: info.group)!)
            let sse: Double
            do {
                sse = try t.data.withUnsafeBufferPointer { src in
                    try out.withUnsafeMutableBytes {
                        try BlockQuantizer.quantize(src, rows: info.rows, cols: info.cols, type: info.type, group: info.group, into: $0, threads: job.threads)
                    }
                }
            } catch let e as SinkKitError {
                throw SinkKitError(e.kind, "\(info.name): \(e.message)")
            }
            return (out, sse)
        }
    }

    func provenance(plan: MergePlan, recipe: QuantRecipe, infos: [SKMTensorInfo]) throws -> [(String, SKMValue)] {
        func json(_ v: Any) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]), as: UTF8.self)
        }
        var sources: [String: String] = [:]
        let dir = job.modelDirectory
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter {
            $0.hasSuffix(".safetensors") || $0.hasSuffix(".json") || $0 == "chat_template.jinja"
        }
        for f in files.sorted() { sources[f] = try SHA256.hexDigest(ofFile: dir + "/" + f) }
        if let tp = job.trainableParamsPath { sources[tp] = try SHA256.hexDigest(ofFile: tp) }
        var r = recipe.description
        var counts: [String: Int] = [:]
        for i in infos { counts[i.type.userName + (i.type.isQuantized ? ":\(i.group)" : ""), default: 0] += 1 }
        r["tensors_per_type"] = counts
        r["compression"] = job.compressionLevel.map { "zstd level \($0)" } ?? "none"
        let p = try plan.provenance()
        return [
            ("provenance.tool", .string(Merger.toolVersion)),
            ("provenance.sources", .string(try json(sources))),
            ("provenance.adapters", .string(try json(p["adapters"] ?? []))),
            ("provenance.recipe", .string(try json(r))),
        ] + (job.context.map { [("provenance.context", SKMValue.int(Int64($0)))] } ?? [])
    }
}
