import COpenBLAS
import SKCore
import SKKernels

/// `out[t, r] = Σ_c W[r, c] · x[t, c]` for `n` activation rows, on whatever type W is stored in.
/// f32 weights with several rows use OpenBLAS sgemm; f16 weights are converted one tile of rows
/// at a time into a small scratch buffer for sgemm; quantized weights quantize each activation
/// row once (blocks of 32, int8) and use the integer dot kernels: never a whole f32 matrix.
final class MatMul {
    let kernels: UnsafePointer<sk_kernel_table>
    let threads: Int
    private var actScratch: [sk_act_q8] = []

    init(threads: Int) {
        kernels = sk_kernels_best()
        self.threads = threads
    }

    func callAsFunction(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, out: UnsafeMutablePointer<Float>) {
        let rows = w.rows, cols = w.cols, k = kernels.pointee
        switch w.type {
        case .f32:
            let wp = w.base.assumingMemoryBound(to: Float.self)
            if n > 1 {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(rows), Int32(cols), 1, x, Int32(cols), wp, Int32(cols), 0, out, Int32(rows))
                return
            }
            parallelFor(rows, threads: threads) { r in for i in r { out[i] = k.dot_f32(wp + i * cols, x, Int32(cols)) } }
        case .f16:
            let wp = w.base.assumingMemoryBound(to: UInt16.self)
            if n > 1 {
                let tile = 64
                var scratch = [Float](repeating: 0, count: tile * cols)
                var r0 = 0
                while r0 < rows {
                    let nr = min(tile, rows - r0)
                    scratch.withUnsafeMutableBufferPointer { s in
                        for i in 0..<nr { Dequantize.block(UnsafeRawPointer(wp + (r0 + i) * cols), type: .f16, group: cols, into: s.baseAddress! + i * cols) }
                        // out[:, r0..<r0+nr] with ldc = rows
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(nr), Int32(cols), 1, x, Int32(cols), s.baseAddress, Int32(cols), 0, out + r0, Int32(rows))
                    }
                    r0 += nr
                }
                return
            }
            parallelFor(rows, threads: threads) { r in for i in r { out[i] = k.dot_f16(wp + i * cols, x, Int32(cols)) } }
        case .int8, .int4, .int4Sym:
            let blocks = cols / 32
            if actScratch.count < n * blocks { actScratch = [sk_act_q8](repeating: sk_act_q8(), count: n * blocks) }
            actScratch.withUnsafeMutableBufferPointer { a in
                let ap = a.baseAddress!
                parallelFor(n, threads: threads) { t in for i in t { k.quantize_act(x + i * cols, ap + i * blocks, Int32(cols)) } }
                let g = Int32(w.group), c = Int32(cols)
                parallelFor(rows, threads: threads) { r in
                    for i in r {
                        let row = w.row(i)
                        for t in 0..<n {
                            let act = UnsafePointer(ap + t * blocks)
                            let v: Float
                            switch w.type {
                            case .int8: v = k.dot_int8(row, act, c)
                            case .int4: v = k.dot_int4(row, act, c, g)
                            default: v = k.dot_int4_sym(row, act, c, g)
                            }
                            out[t * rows + i] = v
                        }
                    }
                }
            }
        }
    }
}
