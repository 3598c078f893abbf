import COpenBLAS
import SKCore

/// The merge formulas of PEFT (`tuners/lora/layer.py`), in f32.
public enum LoraMath {
    /// Linear: `W[out, in] += scale · B[out, r] · A[r, in]`.
    public static func addLinearDelta(_ w: inout Tensor, a: Tensor, b: Tensor, scale: Float) {
        let (out, inp, r) = (w.shape[0], w.shape[1], a.shape[0])
        w.data.withUnsafeMutableBufferPointer { W in
            a.data.withUnsafeBufferPointer { A in
                b.data.withUnsafeBufferPointer { B in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(out), Int32(inp), Int32(r),
                                scale, B.baseAddress, Int32(r), A.baseAddress, Int32(inp), 1, W.baseAddress, Int32(inp))
                }
            }
        }
    }

    /// Embedding: `E[vocab, h] += scale · (B[h, r] · A[r, vocab])ᵀ = scale · Aᵀ · Bᵀ`.
    public static func addEmbeddingDelta(_ e: inout Tensor, a: Tensor, b: Tensor, scale: Float) {
        let (vocab, h, r) = (e.shape[0], e.shape[1], a.shape[0])
        e.data.withUnsafeMutableBufferPointer { E in
            a.data.withUnsafeBufferPointer { A in
                b.data.withUnsafeBufferPointer { B in
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, Int32(vocab), Int32(h), Int32(r),
                                scale, A.baseAddress, Int32(vocab), B.baseAddress, Int32(r), 1, E.baseAddress, Int32(h))
                }
            }
        }
    }

    /// DoRA: `V = W + scale·B·A`, then every row `i` of V is scaled by `m[i] / ‖V[i, :]‖`
    /// (the norm over the input dimension, as PEFT's `get_weight_norm(dim=1)`).
    public static func applyDora(_ w: inout Tensor, a: Tensor, b: Tensor, magnitude: Tensor, scale: Float) {
        addLinearDelta(&w, a: a, b: b, scale: scale)
        let (out, inp) = (w.shape[0], w.shape[1])
        w.data.withUnsafeMutableBufferPointer { W in
            for i in 0..<out {
                var ss: Double = 0
                for j in 0..<inp { let v = Double(W[i * inp + j]); ss += v * v }
                let factor = magnitude.data[i] / Float(ss.squareRoot())
                for j in 0..<inp { W[i * inp + j] *= factor }
            }
        }
    }

    /// Appends rows equal to the mean of the existing rows until `rows` rows, as LongLoRA's
    /// `smart_tokenizer_and_embedding_resize` does for added tokens.
    public static func growRowsWithMean(_ t: inout Tensor, rows: Int) {
        let (old, cols) = (t.shape[0], t.cols)
        guard rows > old else { return }
        var mean = [Double](repeating: 0, count: cols)
        t.data.withUnsafeBufferPointer { p in
            for i in 0..<old { for j in 0..<cols { mean[j] += Double(p[i * cols + j]) } }
        }
        let row = mean.map { Float($0 / Double(old)) }
        t.data.reserveCapacity(rows * cols)
        for _ in old..<rows { t.data.append(contentsOf: row) }
        t.shape[0] = rows
    }
}
