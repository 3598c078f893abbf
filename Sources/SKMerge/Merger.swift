import Foundation
import SKCore
import SKModel
import SKSafetensors

/// `skconv merge`: a `MergePlan` written out as a Hugging Face directory (safetensors with
/// provenance metadata, config.json, tokenizer files), streamed one tensor at a time into a
/// temporary directory that is renamed into place at the end.
public struct Merger {
    public let job: MergeJob
    public init(job: MergeJob) { self.job = job }

    public static let toolVersion = "sinkkit \(SinkKitVersion.release)"
    static let tokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                 "tokenizer.model", "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja"]

    /// Runs the merge. On any error nothing is left at the output path.
    public func run(progress: MergeProgress? = nil) throws -> MergeReport {
        let target = try outputTarget()
        var report = try target.write { tmp in try merge(into: tmp, progress: progress) }
        report.warnings += target.notes
        return report
    }

    /// Where the merge writes: a directory that is none of the inputs, replaced (with --force)
    /// only when a previous merge wrote it.
    public func outputTarget() throws -> OutputTarget {
        try OutputTarget(job.outputDirectory, kind: .directory, inputs: job.inputPaths, force: job.force,
                         replaceable: Self.isMergeOutput)
    }

    /// Whether `directory` is what `skconv merge` writes: a model.safetensors whose metadata has
    /// SinkKit's provenance.
    public static func isMergeOutput(_ directory: String) -> Bool {
        guard let f = try? SafetensorsFile(path: directory + "/model.safetensors") else { return false }
        return f.metadata["sinkkit"] != nil
    }

    private func merge(into dir: String, progress: MergeProgress?) throws -> MergeReport {
        let plan = try MergePlan(job: job)
        guard plan.gguf == nil else {
            throw SinkKitError(.refused, "\(job.baseDirectory): skconv merge writes a Hugging Face directory, and a GGUF base has no tokenizer.json to go with it; merge onto a GGUF base with skconv quantize --model \(job.baseDirectory) --adapter … (--type f32 keeps the floats)")
        }
        var report = MergeReport()
        report.warnings = plan.warnings
        report.previousVocabSize = plan.config.vocabSize
        report.vocabSize = plan.vocabSize
        report.ropeScalingWritten = plan.ropeScalingWritten

        let entries = plan.tensorNames.map { n -> SafetensorsWriter.Entry in
            let stored = plan.base.info(n)!.dtype
            return SafetensorsWriter.Entry(name: n, dtype: stored.isFloatWeight ? (job.dtype ?? stored) : stored, shape: plan.outputShape(n))
        }
        let provenance = try JSONWriter.string(try plan.provenance())
        let writer = try SafetensorsWriter(path: dir + "/model.safetensors", entries: entries,
                                           metadata: ["format": "pt", "sinkkit": provenance])
        for (i, e) in writer.order.enumerated() {
            let name = e.name
            if !plan.isFloat(name) {
                // Integer buffers (rare in LLaMA checkpoints) are copied byte for byte.
                guard let f = plan.checkpoint?.file(for: name) else {
                    throw SinkKitError(.unsupportedDType, "\(name): an integer tensor outside a safetensors checkpoint")
                }
                try writer.write(name: name, bytes: try f.rawBytes(name))
                f.release(name)
            } else if let rows = try plan.rowMerge(name) {
                // Streamed by blocks of rows: peak memory is a block, not the tensor.
                try writer.write(name: name) { emit in try rows.forEachBlock { merged, _, _ in try emit(merged) } }
                report.loraModulesMerged += rows.loraModules
                report.largestTensorBytes = max(report.largestTensorBytes, plan.base.info(name)!.byteCount)
                report.tensorsWritten += 1
            } else {
                var outcome = MergePlan.TensorOutcome()
                let t = try plan.mergedTensor(name, outcome: &outcome)
                report.loraModulesMerged += outcome.loraModulesMerged
                report.tensorsReplaced += outcome.replaced
                report.largestTensorBytes = max(report.largestTensorBytes, plan.base.info(name)!.byteCount)
                try writer.write(name: name, tensor: t)
                report.tensorsWritten += 1
            }
            progress?(i + 1, writer.order.count, name)
        }
        try writer.finish()
        report.outputBytes = (try? FileManager.default.attributesOfItem(atPath: dir + "/model.safetensors")[.size] as? Int) ?? 0

        try plan.outputConfig.jsonData().write(to: URL(fileURLWithPath: dir + "/config.json"))
        let tokDir = plan.tokenizerDirectory
        for f in Self.tokenizerFiles where FileManager.default.fileExists(atPath: tokDir + "/" + f) {
            try copy(tokDir + "/" + f, to: dir + "/" + f)
        }
        if FileManager.default.fileExists(atPath: job.baseDirectory + "/generation_config.json") {
            try copy(job.baseDirectory + "/generation_config.json", to: dir + "/generation_config.json")
        }
        report.peakResidentBytes = ProcessMemory.peakResidentBytes()
        return report
    }

    private func copy(_ from: String, to: String) throws {
        guard InputFile.isRegularFile(from) else { throw SinkKitError(.io, "\(from) is not a regular file") }
        do { try FileManager.default.copyItem(atPath: from, toPath: to) } catch {
            throw SinkKitError(.io, "cannot copy \(from) to \(to): \(error.localizedDescription)")
        }
    }
}
