import COpenBLAS
import SKCore
import SKKernels

/// `out[t, r] = Σ_c W[r, c] · x[t, c]` for `n` activation rows, on whatever type W is stored in.
///
/// - Several rows (a prompt chunk, `n ≥ gemmRows`): each worker takes a contiguous share of W's
///   rows, decodes them a small tile at a time into its own f32 scratch (never a whole matrix)
///   and multiplies the tile with single-threaded sgemm: the decode is paid once per weight and
///   amortised over the n activations, and sgemm runs at the FMA units' speed.
/// - One or a few rows (generation): quantized weights quantize each activation row once (blocks
///   of 32, int8) and use the integer dot kernels straight on the mapped blocks; f32/f16 rows use
///   the float dot kernels.
final class MatMul {
    /// Activation rows from which the tiled sgemm path is used for quantized weights.
    static let gemmRows = 16
    let kernels: UnsafePointer<sk_kernel_table>
    let threads: Int
    private var actScratch: [sk_act_q8] = []
    /// One decode tile per worker, allocated once (256 KB: the best of 64/256/1024 KB measured).
    private var tiles: [UnsafeMutablePointer<Float>]
    static let tileFloats = 65_536

    /// AVX512-VNNI GEMM over x8 weights for prompts (nil without VNNI: x8 tiles go to sgemm).
    let gemmX8 = sk_gemm_int4_x8_best()
    let gemmX8Int8 = sk_gemm_int8_x8_best()
    /// Prompts keep their activations in f32 (weights decoded tile by tile into sgemm) instead of
    /// quantizing them to int8 for the VNNI GEMM: slower, and int8 weights then answer like f32.
    var preciseActivations = false

    init(threads: Int) {
        kernels = sk_kernels_best()
        self.threads = threads
        tiles = (0..<threads).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: Self.tileFloats) }
        // The worker pool parallelises; sgemm runs inside one worker. (Only when not already one:
        // OpenBLAS's setter re-creates a pool that BLASThreads stopped.)
        if openblas_get_num_threads() != 1 { openblas_set_num_threads(1) }
    }

    deinit { for t in tiles { t.deallocate() } }

    /// - Parameter rowwise: every activation row through the one-row path (the same arithmetic as
    ///   a call with n = 1 for that row, whatever n is): batched decode rows of different sessions
    ///   get exactly what each would alone.
    func callAsFunction(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, out: UnsafeMutablePointer<Float>, rowwise: Bool = false) {
        if !rowwise && (n >= Self.gemmRows || (n > 1 && !w.type.isQuantized)) { gemm(w, x, n: n, out: out); return }
        let rows = w.rows, cols = w.cols, k = kernels.pointee
        switch w.type {
        case .f32:
            let wp = w.base.assumingMemoryBound(to: Float.self)
            parallelFor(rows, threads: threads) { r in for t in 0..<n { for i in r { out[t * rows + i] = k.dot_f32(wp + i * cols, x + t * cols, Int32(cols)) } } }
        case .f16:
            let wp = w.base.assumingMemoryBound(to: UInt16.self)
            parallelFor(rows, threads: threads) { r in for t in 0..<n { for i in r { out[t * rows + i] = k.dot_f16(wp + i * cols, x + t * cols, Int32(cols)) } } }
        case .int8, .int4, .int4Sym, .int5Sym:   // (int5-sym arrives expanded to int8: WeightMatrix)
            withQuantizedActivations(x, n: n, cols: cols) { ap in
                let blocks = cols / 32
                if let packed = w.packed {
                    // x8 layout: workers take whole groups of 8 rows
                    let asym: Int32 = w.type == .int4 ? 1 : 0, groupBytes = w.packedGroupBytes
                    parallelFor(rows / 8, threads: threads) { gr in
                        for t in 0..<n {
                            let wp = packed + gr.lowerBound * groupBytes, a = UnsafePointer(ap + t * blocks), o = out + t * rows + gr.lowerBound * 8
                            if w.type == .int8 {
                                k.gemv_int8_x8(wp, Int32(gr.count * 8), a, Int32(cols), o)
                            } else {
                                k.gemv_int4_x8(asym, wp, Int32(gr.count * 8), a, Int32(cols), o)
                            }
                        }
                    }
                    return
                }
                let g = Int32(w.group), c = Int32(cols), rb = w.rowBytes
                let type: Int32 = w.type == .int8 ? Int32(SK_INT8) : w.type == .int4 ? Int32(SK_INT4) : Int32(SK_INT4_SYM)
                parallelFor(rows, threads: threads) { r in
                    for t in 0..<n {
                        k.gemv(type, w.row(r.lowerBound), rb, Int32(r.count), UnsafePointer(ap + t * blocks), c, g, out + t * rows + r.lowerBound)
                    }
                }
            }
        }
    }

    /// Quantizes the `n` activation rows of `x` (blocks of 32, int8) into the scratch buffer, once
    /// for all the matrix's rows, and hands it to `body`.
    private func withQuantizedActivations(_ x: UnsafePointer<Float>, n: Int, cols: Int, _ body: (UnsafeMutablePointer<sk_act_q8>) -> Void) {
        let blocks = cols / 32, k = kernels.pointee
        if actScratch.count < n * blocks { actScratch = [sk_act_q8](repeating: sk_act_q8(), count: n * blocks) }
        actScratch.withUnsafeMutableBufferPointer { a in
            let ap = a.baseAddress!
            parallelFor(n, threads: threads) { r in for i in r { k.quantize_act(x + i * cols, ap + i * blocks, Int32(cols)) } }
            body(ap)
        }
    }

    /// out (n, rows) = x (n, cols) · Wᵀ, W's rows split over the workers in decoded tiles.
    private func gemm(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, out: UnsafeMutablePointer<Float>) {
        let rows = w.rows, cols = w.cols, tiles = self.tiles
        if let packed = w.packed, !preciseActivations, w.type == .int8 ? gemmX8Int8 != nil : gemmX8 != nil {
            // integer GEMM (AVX512-VNNI): activations quantized once, workers take groups of 8 rows
            let asym: Int32 = w.type == .int4 ? 1 : 0, groupBytes = w.packedGroupBytes
            withQuantizedActivations(x, n: n, cols: cols) { ap in
                parallelFor(rows / 8, threads: threads) { gr in
                    let wp = packed + gr.lowerBound * groupBytes, o = out + gr.lowerBound * 8
                    if w.type == .int8 {
                        gemmX8Int8!(wp, Int32(gr.count * 8), ap, Int32(n), Int32(cols), o, Int32(rows))
                    } else {
                        gemmX8!(asym, wp, Int32(gr.count * 8), ap, Int32(n), Int32(cols), o, Int32(rows))
                    }
                }
            }
            return
        }
        let packed = w.packed, unit = packed == nil ? 1 : 8   // x8 weights decode in groups of 8 rows
        let tileRows = max(unit, Self.tileFloats / cols / unit * unit)
        let t = max(1, min(threads, rows / unit))
        let asym: Int32 = w.type == .int4 ? 1 : 0, groupBytes = w.packedGroupBytes
        parallelFor(t, threads: t) { chunk in
            for worker in chunk {
                let r0 = rows / unit * worker / t * unit, r1 = rows / unit * (worker + 1) / t * unit
                var r = r0
                while r < r1 {
                    let nr = w.type == .f32 ? r1 - r : min(tileRows, r1 - r)
                    let wp: UnsafePointer<Float>
                    if w.type == .f32 {
                        wp = w.base.assumingMemoryBound(to: Float.self) + r * cols
                    } else {
                        let tile = tiles[worker]
                        if let packed, w.type == .int8 {
                            sk_unpack_int8_x8(packed + r / 8 * groupBytes, Int32(nr), Int32(cols), tile)
                        } else if let packed {
                            sk_unpack_int4_x8(asym, packed + r / 8 * groupBytes, Int32(nr), Int32(cols), tile)
                        } else {
                            for i in 0..<nr { w.dequantizeRow(r + i, into: tile + i * cols) }
                        }
                        wp = UnsafePointer(tile)
                    }
                    // out[:, r ..< r + nr] with ldc = rows
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(nr), Int32(cols), 1, x, Int32(cols), wp, Int32(cols), 0, out + r, Int32(rows))
                    r += nr
                }
            }
        }
    }
}
