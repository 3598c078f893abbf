import Dispatch
import Foundation
import SKCore
import SKFormat
import SKGGUF
import SKMerge
import SKModel
import SKQuant
import SKTokenizer

/// `skconv quantize`: a Hugging Face checkpoint (optionally with adapters merged on the fly,
/// never written to disk as floats) streamed one tensor at a time into a single SKM file with
/// its config, tokenizer and provenance. Quantization uses every core; the file is written
/// under a temporary name and renamed, so a failure (a full disk included) leaves nothing.
public struct SKMConverter {
    public let job: QuantizeJob
    public init(job: QuantizeJob) { self.job = job }

    public func run(progress: QuantizeProgress? = nil) throws -> QuantizeReport { try run(progress: progress, check: nil) }

    /// `check` sees every tensor's SKM type and the tokenizer entries (with where they come from)
    /// before anything is quantized or written, and may refuse them (`runToGGUF`).
    func run(progress: QuantizeProgress?, check: (([SKMTensorInfo], [(String, SKMValue)], String) throws -> Void)?) throws -> QuantizeReport {
        let start = Date()
        let target = try OutputTarget(job.output, kind: .file, inputs: job.mergeJob.inputPaths + (job.imatrix.map { [$0] } ?? []), force: job.force)
        let imatrix = try job.imatrix.map { try ImportanceMatrix(path: $0) }
        let plan = try MergePlan(job: job.mergeJob)
        let recipe = job.mixed
            ? try QuantRecipe.mixed(group: job.group, overrides: job.tensorTypes, tiedEmbeddings: plan.outputConfig.tieWordEmbeddings)
            : try QuantRecipe(type: job.type, group: job.group, overrides: job.tensorTypes)
        var report = QuantizeReport()
        report.warnings = plan.warnings

        // Every tensor of the SKM file is one the runtime reads: a tied model's stored lm_head
        // (transformers ties it to the embedding and ignores it) and RoPE buffers are left out;
        // any other tensor the config does not describe is refused, not carried along unread.
        let extras = Set(plan.extraTensors)
        // A family with fused projections (Phi-3) is stored as the parts the runtime reads.
        let fused = LlamaTensors.fusedParts(plan.outputConfig)
        var parts: [String: (source: String, rows: Range<Int>)] = [:]
        var names: [String] = []
        for name in plan.tensorNames {
            if let ps = fused[name] {
                for p in ps { parts[p.name] = (name, p.rows); names.append(p.name) }
                continue
            }
            if name == LlamaTensors.lmHead && plan.outputConfig.tieWordEmbeddings {
                report.warnings.append("\(name) left out: the config ties the output head to the embedding")
                continue
            }
            if LlamaTensors.isIgnorableBuffer(name) { continue }
            if extras.contains(name) {
                throw SinkKitError(.shapeMismatch, "\(job.modelDirectory): tensor \(name) is not part of a LLaMA model with this config; skrun would not read it, so it is refused (remove it, or fix config.json)")
            }
            names.append(name)
        }
        report.warnings.removeAll { $0.hasPrefix("base has tensors a LLaMA config does not describe") }

        // Every tensor's type is decided (and every group checked) before anything is written.
        var infos: [SKMTensorInfo] = []
        for name in names {
            let source = parts[name]?.source ?? name
            guard plan.isFloat(source) else {
                throw SinkKitError(.unsupportedDType, "\(source): integer tensors have no SKM type (expected F32, F16 or BF16 weights)")
            }
            var shape = plan.outputShape(source)
            if let p = parts[name] { shape[0] = p.rows.count }
            let (t, g) = try recipe.choose(name: name, shape: shape)
            infos.append(SKMTensorInfo(name: name, type: t, group: g, shape: shape))
        }
        // The sources' SHA-256 digests (reading the whole checkpoint) are computed on their own
        // thread from here on, while the tokenizer is parsed and the tensors are converted; the
        // header reserves their fixed-length text.
        let digests = SourceDigests(files: sourceFiles())
        defer { digests.cancel() }
        var metadata = try plan.outputConfig.metadataEntries()
        let tokenizerEntries: [(String, SKMValue)], tokenizerSource: String
        if let g = plan.gguf, plan.tokenizerDirectory == job.modelDirectory {
            tokenizerEntries = try GGUFTokenizer.spec(g.gguf).metadataEntries()
            tokenizerSource = g.gguf.path + " (tokenizer.ggml.*)"
        } else {
            tokenizerEntries = try TokenizerMetadata.entries(directory: plan.tokenizerDirectory)
            tokenizerSource = plan.tokenizerDirectory + "/tokenizer.json"
        }
        report.warnings += try Self.checkRunnable(tokenizer: tokenizerEntries, config: plan.outputConfig, source: tokenizerSource)
        try check?(infos, tokenizerEntries, tokenizerSource)
        metadata += tokenizerEntries
        metadata += try provenance(plan: plan, recipe: recipe, infos: infos, sources: digests.placeholders, imatrix: imatrix)

        try target.write { tmp in
            let writer = try SKMWriter(path: tmp, metadata: metadata, tensors: infos, compressionLevel: job.compressionLevel)
            var byKey: [String: TypeSummary] = [:]
            var fusedCache: (name: String, tensor: Tensor)?   // the fused tensor whose parts are being written
            // The importance matrix's column weights for the int4/int5 encoders (each use counted).
            func importance(_ info: SKMTensorInfo) throws -> [Float]? {
                guard info.type == .int4 || info.type == .int4Sym || info.type == .int5Sym,
                      let w = try imatrix?.weights(for: info.name, cols: info.cols) else { return nil }
                report.imatrixTensors += 1
                return w
            }
            for (i, info) in infos.enumerated() {
                let raw: [UInt8], sums: BlockQuantizer.Sums
                if let part = parts[info.name] {
                    if fusedCache?.name != part.source {
                        var outcome = MergePlan.TensorOutcome()
                        fusedCache = (part.source, try plan.mergedTensor(part.source, outcome: &outcome))
                        report.loraModulesMerged += outcome.loraModulesMerged
                    }
                    let t = fusedCache!.tensor, cols = t.shape[1]
                    let slice = Tensor(shape: [part.rows.count, cols], data: Array(t.data[(part.rows.lowerBound * cols)..<(part.rows.upperBound * cols)]))
                    (raw, sums) = try encode(slice, info, importance: try importance(info))
                } else if let g = plan.gguf, info.type.isQuantized, plan.isUnchangedBase(info.name),
                   let blocks = try g.carriedBlocks(info.name, type: info.type, group: info.group) {
                    // The GGUF's blocks hold exactly these values: carried over, not re-quantized.
                    raw = blocks
                    let values = blocks.withUnsafeBytes { Dequantize.tensor($0, type: info.type, group: info.group, rows: info.rows, cols: info.cols) }
                    sums = BlockQuantizer.Sums(squaredError: 0, squaredValue: values.reduce(0.0) { $0 + Double($1) * Double($1) })
                    report.carriedTensors.append(info.name)
                } else {
                let importance = try importance(info)
                if let byRows = try quantizeByRows(info, plan: plan, importance: importance, into: &report) {
                    (raw, sums) = byRows
                } else {
                    var outcome = MergePlan.TensorOutcome()
                    let t = try plan.mergedTensor(info.name, outcome: &outcome)
                    report.loraModulesMerged += outcome.loraModulesMerged
                    (raw, sums) = try encode(t, info, importance: importance)
                    if outcome.loraModulesMerged + outcome.replaced > 0 && info.type.isQuantized {
                        try measureDeltaKept(t, raw: raw, info: info, plan: plan, importance: importance, into: &report)
                    }
                }
                }
                let stored = try raw.withUnsafeBytes { try writer.write(name: info.name, raw: $0) }
                let key = "\(info.type.userName):\(info.group)"
                var s = byKey[key] ?? TypeSummary(type: info.type, group: info.group)
                s.tensors += 1
                s.parameters += info.rows * info.cols
                s.rawBytes += raw.count
                s.storedBytes += stored
                s.squaredError += sums.squaredError
                s.squaredValue += sums.squaredValue
                byKey[key] = s
                report.parameters += info.rows * info.cols
                progress?(i + 1, infos.count, info.name)
            }
            try writer.finish(replacing: [("provenance.sources", .string(try Self.json(try digests.wait())))])
            report.summaries = byKey.values.sorted { ($0.type.rawValue, $0.group) < ($1.type.rawValue, $1.group) }
            report.fileBytes = (try FileManager.default.attributesOfItem(atPath: tmp)[.size] as? Int) ?? 0
        }
        report.warnings += target.notes
        if let kept = report.deltaKept, kept < 0.5 {
            report.warnings.append(String(format: "only %.0f%% of the fine-tune's change to the weights survives %@ quantization (the base's weights sit on a grid the delta is smaller than): keep the fine-tune in f32 with skconv adapter + skrun --lora, or quantize with more bits", 100 * kept, job.type.userName))
        }
        report.peakResidentBytes = ProcessMemory.peakResidentBytes()
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    /// The tokenizer as `skrun` will build it from these entries: whatever the runtime would refuse
    /// (merges naming unknown tokens, a token id used twice, a special token outside the
    /// vocabulary, an unsafe regex, more tokens than embedding rows) is refused here, before a file
    /// is written. A chat template the runtime's Jinja subset cannot parse is a warning: the model
    /// still runs without `--chat`.
    static func checkRunnable(tokenizer entries: [(String, SKMValue)], config: LlamaConfig, source: String) throws -> [String] {
        let m = Dictionary(entries, uniquingKeysWith: { a, _ in a })
        let tok: Tokenizer
        do { tok = try Tokenizer(spec: try TokenizerSpec(metadata: m, path: source)) } catch let e as SinkKitError {
            throw SinkKitError(e.kind, "\(source): \(e.message)")
        }
        guard tok.vocab.count <= config.vocabSize else {
            throw SinkKitError(.config, "\(source) has \(tok.vocab.count) tokens but the model's vocab_size is \(config.vocabSize): ids past \(config.vocabSize - 1) would have no embedding row")
        }
        guard !tok.chatTemplate.isEmpty else { return [] }
        do { _ = try JinjaTemplate(tok.chatTemplate) } catch {
            return ["the chat template cannot be parsed by skrun's Jinja subset (\(error)); skrun --chat will refuse this model"]
        }
        return []
    }

    /// A tensor the plan can merge by blocks of rows (`RowMerge`: a safetensors base of any float
    /// dtype, plain LoRA deltas or none) is quantized, or encoded as f32 / f16, a block at a time,
    /// a few MB of rows (no f32 copy of the tensor; the base's pages are released as it goes), and
    /// what a quantized file keeps of a merged delta is measured on the same blocks. nil when that
    /// does not apply (a GGUF base, a replacement, vocabulary growth, DoRA).
    func quantizeByRows(_ info: SKMTensorInfo, plan: MergePlan, importance: [Float]?,
                        into report: inout QuantizeReport) throws -> ([UInt8], BlockQuantizer.Sums)? {
        guard let merge = try plan.rowMerge(info.name), merge.rows == info.rows, merge.cols == info.cols,
              let count = info.type.byteCount(rows: info.rows, cols: info.cols, group: info.group) else { return nil }
        var out = [UInt8](repeating: 0, count: count)
        var sums = BlockQuantizer.Sums()
        let rowBytes = count / max(1, info.rows)
        let measure = merge.loraModules > 0 && info.type.isQuantized
        var baseRaw: [UInt8] = [], dot = 0.0, norm = 0.0
        try out.withUnsafeMutableBytes { dst in
            try merge.forEachBlock(chunkElements: job.rowBlockElements, wantBase: measure) { chunk, base, r0 in
                let n = chunk.count / info.cols
                let block = UnsafeMutableRawBufferPointer(rebasing: dst[(r0 * rowBytes)..<((r0 + n) * rowBytes)])
                if !info.type.isQuantized {
                    let s = try Self.encodeFloats(chunk, as: info.type, name: info.name, firstElement: r0 * info.cols, into: block)
                    sums.squaredError += s.squaredError
                    sums.squaredValue += s.squaredValue
                    return
                }
                let s = try Self.naming(info.name) {
                    try Self.withOptional(importance) { w in
                        try BlockQuantizer.quantize(chunk, rows: n, cols: info.cols, type: info.type, group: info.group,
                                                    into: block, threads: job.threads, firstRow: r0, importance: w)
                    }
                }
                sums.squaredError += s.squaredError
                sums.squaredValue += s.squaredValue
                guard let base else { return }
                // ⟨Q(merged) − Q(base), merged − base⟩ and ‖merged − base‖² on this block.
                if baseRaw.count < n * rowBytes { baseRaw = [UInt8](repeating: 0, count: n * rowBytes) }
                try baseRaw.withUnsafeMutableBytes { b in
                    _ = try Self.withOptional(importance) { w in
                        try BlockQuantizer.quantize(base, rows: n, cols: info.cols, type: info.type, group: info.group,
                                                    into: UnsafeMutableRawBufferPointer(rebasing: b[0..<(n * rowBytes)]),
                                                    threads: job.threads, firstRow: r0, importance: w)
                    }
                }
                let q = Dequantize.tensor(UnsafeRawBufferPointer(block), type: info.type, group: info.group, rows: n, cols: info.cols)
                let qb = baseRaw.withUnsafeBytes { Dequantize.tensor(UnsafeRawBufferPointer(rebasing: $0[0..<(n * rowBytes)]), type: info.type, group: info.group, rows: n, cols: info.cols) }
                for i in 0..<chunk.count {
                    let d = Double(chunk[i]) - Double(base[i])
                    dot += (Double(q[i]) - Double(qb[i])) * d
                    norm += d * d
                }
            }
        }
        if measure {
            let k = info.name.contains(".layers.") ? 0 : 1
            report.deltaKeptDot[k] += dot
            report.deltaNorm[k] += norm
        }
        report.loraModulesMerged += merge.loraModules
        return (out, sums)
    }

    /// f32 or f16 bytes of `values` (elements `firstElement`… of tensor `name`), the squared
    /// round-trip error (f16) and the squared values; a value beyond f16's range is refused by
    /// tensor and element.
    static func encodeFloats(_ values: UnsafeBufferPointer<Float>, as type: QuantType, name: String, firstElement: Int,
                             into out: UnsafeMutableRawBufferPointer) throws -> BlockQuantizer.Sums {
        var squares = 0.0
        for v in values { squares += Double(v) * Double(v) }
        guard type == .f16 else {
            try ElementConversion.encode(values, dtype: .F32, into: out.baseAddress!)
            return BlockQuantizer.Sums(squaredError: 0, squaredValue: squares)
        }
        try ElementConversion.encode(values, dtype: .F16, into: out.baseAddress!)
        var sse = 0.0
        for (i, v) in values.enumerated() {
            let h = HalfFloat.f16ToF32(HalfFloat.f32ToF16(v))
            guard h.isFinite else {
                throw SinkKitError(.nonFinite, "\(name): value \(v) at element \(firstElement + i) is beyond the f16 range (±65504); keep this tensor f32 with --tensor-type")
            }
            let r = Double(h) - Double(v); sse += r * r
        }
        return BlockQuantizer.Sums(squaredError: sse, squaredValue: squares)
    }

    /// Raw SKM bytes of one tensor, the squared round-trip error and the squared values.
    func encode(_ t: Tensor, _ info: SKMTensorInfo, importance: [Float]? = nil) throws -> ([UInt8], BlockQuantizer.Sums) {
        switch info.type {
        case .f32, .f16:
            var out = [UInt8](repeating: 0, count: info.type == .f16 ? 2 * t.count : 4 * t.count)
            let sums = try t.data.withUnsafeBufferPointer { src in
                try out.withUnsafeMutableBytes { try Self.encodeFloats(src, as: info.type, name: info.name, firstElement: 0, into: $0) }
            }
            return (out, sums)
        case .int8, .int4, .int4Sym, .int5Sym:
            var out = [UInt8](repeating: 0, count: info.type.byteCount(rows: info.rows, cols: info.cols, group: info.group)!)
            let sums = try Self.naming(info.name) {
                try t.data.withUnsafeBufferPointer { src in
                    try out.withUnsafeMutableBytes { dst in
                        try Self.withOptional(importance) { w in
                            try BlockQuantizer.quantize(src, rows: info.rows, cols: info.cols, type: info.type, group: info.group, into: dst,
                                                        threads: job.threads, importance: w)
                        }
                    }
                }
            }
            return (out, sums)
        }
    }

    /// How much of a fine-tune's change to a tensor the quantized file keeps: with Δ = merged − base
    /// and Δq = Q(merged) − Q(base) (both quantized by the same rule), the projection ⟨Δq, Δ⟩ / ⟨Δ, Δ⟩
    /// (1: all of it, 0: quantization snapped the weights back to the base's codes), summed over
    /// the changed tensors (layer matrices and embeddings apart: QuantizeReport). A base released on a quantization grid loses a small LoRA delta to
    /// rounding; `skrun --lora` (run-time adapters) keeps it whole.
    func measureDeltaKept(_ merged: Tensor, raw: [UInt8], info: SKMTensorInfo, plan: MergePlan, importance: [Float]?,
                          into report: inout QuantizeReport) throws {
        guard let b = plan.base.info(info.name), b.shape == merged.shape else { return }
        let base = try plan.base.loadF32(info.name)
        let (baseRaw, _) = try encode(base, info, importance: importance)
        let q = raw.withUnsafeBytes { Dequantize.tensor($0, type: info.type, group: info.group, rows: info.rows, cols: info.cols) }
        let qb = baseRaw.withUnsafeBytes { Dequantize.tensor($0, type: info.type, group: info.group, rows: info.rows, cols: info.cols) }
        var dot = 0.0, norm = 0.0
        for i in 0..<merged.count {
            let d = Double(merged.data[i]) - Double(base.data[i])
            dot += (Double(q[i]) - Double(qb[i])) * d
            norm += d * d
        }
        let k = info.name.contains(".layers.") ? 0 : 1
        report.deltaKeptDot[k] += dot
        report.deltaNorm[k] += norm
    }

    /// `body` with the buffer of an optional array (nil stays nil).
    static func withOptional<R>(_ a: [Float]?, _ body: (UnsafeBufferPointer<Float>?) throws -> R) rethrows -> R {
        guard let a else { return try body(nil) }
        return try a.withUnsafeBufferPointer { try body($0) }
    }

    /// `body`'s result; a SinkKitError it throws gets the tensor's name in front of its message.
    static func naming<R>(_ tensor: String, _ body: () throws -> R) throws -> R {
        do { return try body() } catch let e as SinkKitError { throw SinkKitError(e.kind, "\(tensor): \(e.message)") }
    }

    static func json(_ v: Any) throws -> String {
        try JSONWriter.string(v)
    }

    /// The files whose digests the provenance records: (key, path).
    func sourceFiles() -> [(String, String)] {
        let dir = job.modelDirectory
        if GGUFFile.isGGUF(dir) {
            return [(String(dir.split(separator: "/").last ?? Substring(dir)), dir)] + (job.trainableParamsPath.map { [($0, $0)] } ?? [])
        }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter {
            $0.hasSuffix(".safetensors") || $0.hasSuffix(".json") || $0 == "chat_template.jinja"
        }
        return files.sorted().map { ($0, dir + "/" + $0) } + (job.trainableParamsPath.map { [($0, $0)] } ?? [])
    }

    func provenance(plan: MergePlan, recipe: QuantRecipe, infos: [SKMTensorInfo], sources: [String: String], imatrix: ImportanceMatrix?) throws -> [(String, SKMValue)] {
        let json = Self.json
        var r = recipe.description
        var counts: [String: Int] = [:]
        for i in infos { counts[i.type.userName + (i.type.isQuantized ? ":\(i.group)" : ""), default: 0] += 1 }
        r["tensors_per_type"] = counts
        r["compression"] = job.compressionLevel.map { "zstd level \($0)" } ?? "none"
        if let m = imatrix {
            r["imatrix"] = ["file": URL(fileURLWithPath: m.path).lastPathComponent, "sha256": m.sha256,
                            "calibration": (try? StrictJSON.parse(Data(m.provenance.utf8), path: "calibration provenance")) ?? m.provenance]
        }
        let p = try plan.provenance()
        return [
            ("provenance.tool", .string(Merger.toolVersion)),
            ("provenance.sources", .string(try json(sources))),
            ("provenance.adapters", .string(try json(p["adapters"] ?? []))),
            ("provenance.recipe", .string(try json(r))),
        ] + (job.context.map { [("provenance.context", SKMValue.int(Int64($0)))] } ?? [])
    }
}

/// SHA-256 digests of files, computed on a background thread from the moment it is made.
/// `cancel()` stops the thread early (between chunks) once the digests are no longer wanted.
final class SourceDigests: @unchecked Sendable {
    let files: [(String, String)]
    private var result: Result<[String: String], Error> = .success([:])
    private let done = DispatchSemaphore(value: 0)
    private let lock = Lock()
    private var cancelled = false

    init(files: [(String, String)]) {
        self.files = files
        Thread { [self] in
            result = Result {
                var d: [String: String] = [:]
                for (key, path) in files {
                    guard let h = try SHA256.hexDigest(ofFile: path, unless: { [self] in self.isCancelled }) else {
                        throw SinkKitError(.io, "computing the digest of \(path) was cancelled")
                    }
                    d[key] = h
                }
                return d
            }
            done.signal()
        }.start()
    }

    private var isCancelled: Bool { lock.withLock { cancelled } }

    func cancel() { lock.withLock { cancelled = true } }

    /// Same keys, digests of the same length: what the header reserves.
    var placeholders: [String: String] { Dictionary(files.map { ($0.0, String(repeating: "0", count: 64)) }, uniquingKeysWith: { a, _ in a }) }

    /// The digests (or the first error reading a file), once the thread is done.
    func wait() throws -> [String: String] {
        done.wait()
        done.signal()
        return try result.get()
    }
}
