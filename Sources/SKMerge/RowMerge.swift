import COpenBLAS
import SKCore
import SKModel
import SKSafetensors

/// One merged 2-D tensor produced a block of rows at a time, so a converter's peak memory is a
/// block, not the tensor (a 7B model's 49,152 × 4,096 head is 805 MB in f32). It applies to the
/// common case: a base tensor from a safetensors checkpoint (any float dtype), not replaced
/// (trainable params, `modules_to_save`) and not grown, whose adapters add plain LoRA deltas
/// (linear or embedding; DoRA needs whole-row norms of the merged matrix and is left to
/// `MergePlan.mergedTensor`). Rows are the same values `mergedTensor` computes: the base's
/// rows, then each adapter's `scale · B · A` (embedding: `scale · Aᵀ · Bᵀ`) in command-line order.
public final class RowMerge {
    public let name: String
    public let rows: Int
    public let cols: Int
    /// LoRA modules this tensor merges (0: the base tensor unchanged).
    public var loraModules: Int { deltas.count }

    enum Kind { case linear, embedding }
    let file: SafetensorsFile
    let deltas: [(kind: Kind, a: Tensor, b: Tensor, scale: Float)]

    init(name: String, rows: Int, cols: Int, file: SafetensorsFile, deltas: [(kind: Kind, a: Tensor, b: Tensor, scale: Float)]) {
        self.name = name
        self.rows = rows
        self.cols = cols
        self.file = file
        self.deltas = deltas
    }

    /// Calls `body(merged, base, firstRow)` for consecutive blocks of whole rows (about
    /// `chunkElements` elements each, at least one row). `base` holds the base's rows when the
    /// tensor is merged and `wantBase` is set (for measuring what quantization keeps of the
    /// delta), else nil. The base's file pages are released block by block. A non-finite merged
    /// value is refused with its element index.
    public func forEachBlock(chunkElements: Int = 1 << 20, wantBase: Bool = false,
                             _ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>?, Int) throws -> Void) throws {
        var merged: [Float] = []
        let keepBase = wantBase && !deltas.isEmpty
        let done = try file.withF32Chunks(name, rowElements: cols, chunkElements: chunkElements) { chunk, first in
            let r0 = first / cols, n = chunk.count / cols
            guard !deltas.isEmpty else {
                if let k = Tensor.firstNonFinite(chunk) {
                    throw SinkKitError(.nonFinite, "tensor \(name) has a non-finite value (\(chunk[k])) at element \(first + k); refusing to write it")
                }
                return try body(chunk, nil, r0)
            }
            if merged.count < chunk.count { merged = [Float](repeating: 0, count: chunk.count) }
            try merged.withUnsafeMutableBufferPointer { m in
                let out = UnsafeMutableBufferPointer(rebasing: m[0..<chunk.count])
                _ = out.initialize(from: chunk)
                for d in deltas { add(d, rows: r0, count: n, into: out.baseAddress!) }
                if let k = Tensor.firstNonFinite(UnsafeBufferPointer(out)) {
                    throw SinkKitError(.nonFinite, "merged tensor \(name) has a non-finite value (\(out[k])) at element \(first + k); refusing to write it")
                }
                try body(UnsafeBufferPointer(out), keepBase ? chunk : nil, r0)
            }
        }
        guard done else { throw SinkKitError(.unsupportedDType, "\(file.path): \(name) cannot be read by rows") }
    }

    /// rows r0 ..< r0 + n of the delta, added to `out` (n × cols).
    private func add(_ d: (kind: Kind, a: Tensor, b: Tensor, scale: Float), rows r0: Int, count n: Int, into out: UnsafeMutablePointer<Float>) {
        let r = d.a.shape[0]
        d.a.data.withUnsafeBufferPointer { A in
            d.b.data.withUnsafeBufferPointer { B in
                switch d.kind {
                case .linear:   // W[r0.., :] += scale · B[r0.., r] · A[r, in]
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(cols), Int32(r),
                                d.scale, B.baseAddress! + r0 * r, Int32(r), A.baseAddress, Int32(cols), 1, out, Int32(cols))
                case .embedding:   // E[r0.., :] += scale · A[r, r0..]ᵀ · B[h, r]ᵀ
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, Int32(n), Int32(cols), Int32(r),
                                d.scale, A.baseAddress! + r0, Int32(rows), B.baseAddress, Int32(r), 1, out, Int32(cols))
                }
            }
        }
    }
}

extension MergePlan {
    /// The tensor as a `RowMerge` when it can be produced by blocks of rows (see there); nil when
    /// it needs `mergedTensor` (a GGUF base, a replacement, vocabulary growth, DoRA, a bias, 1-D).
    public func rowMerge(_ name: String) throws -> RowMerge? {
        guard let file = checkpoint?.file(for: name), let info = base.info(name), info.shape.count == 2,
              info.dtype.isFloatWeight, info.shape[0] > 0, info.shape[1] > 0, name.hasSuffix(".weight") else { return nil }
        if let tr = trainable, tr.map[name] != nil { return nil }
        if LlamaTensors.isVocabSized(name), info.shape[0] < vocabSize { return nil }
        let module = Self.moduleName(of: name)
        var deltas: [(kind: RowMerge.Kind, a: Tensor, b: Tensor, scale: Float)] = []
        for a in adapters {
            if a.replacements[name] != nil { return nil }
            guard let l = a.modules[module] else { continue }
            if l.magnitude != nil || a.config.useDora { return nil }
            let scale = Float(a.config.scale(module: module))
            if l.isEmbedding {
                deltas.append((.embedding, try a.tensors.loadF32(l.embeddingA!), try a.tensors.loadF32(l.embeddingB!), scale))
            } else {
                deltas.append((.linear, try a.tensors.loadF32(l.a!), try a.tensors.loadF32(l.b!), scale))
            }
        }
        return RowMerge(name: name, rows: info.shape[0], cols: info.shape[1], file: file, deltas: deltas)
    }
}
