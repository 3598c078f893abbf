import Dispatch
import Foundation
import SKCore
import SKKernels

/// The fast quantizer: the C kernels of `Sources/SKKernels/quant.c` (a scalar path, and AVX2 /
/// AVX-512 paths that search four / eight blocks at once, one per f64 lane), which follow
/// Formats/SKM.md in the same order of operations as `QuantizeReference`, so they write the same
/// bytes; rows are spread over all cores. It also measures the squared error of the round trip for the summary.
public enum BlockQuantizer {
    /// Squared round-trip error and squared values of a quantized tensor, both summed in f64.
    public struct Sums {
        public var squaredError = 0.0
        public var squaredValue = 0.0
        public init(squaredError: Double = 0, squaredValue: Double = 0) {
            self.squaredError = squaredError
            self.squaredValue = squaredValue
        }
    }

    static func kernelType(_ type: QuantType) -> Int32? {
        switch type {
        case .int8: Int32(SK_INT8)
        case .int4: Int32(SK_INT4)
        case .int4Sym: Int32(SK_INT4_SYM)
        case .int5Sym: Int32(SK_INT5_SYM)
        default: nil
        }
    }

    /// Quantizes a `rows × cols` f32 matrix into `out` (exactly `type.byteCount` bytes), rows
    /// spread over `threads` cores. Throws on NaN/Inf input (naming the element, its row counted
    /// from `firstRow` when `src` is part of a larger tensor) and on a group that does not divide a row.
    /// - Parameter importance: per input column (`cols` values), the weights of an
    ///   importance-weighted search (int4 and int4-sym; `skconv calibrate`); nil: the plain rule.
    @discardableResult
    public static func quantize(_ src: UnsafeBufferPointer<Float>, rows: Int, cols: Int, type: QuantType, group: Int,
                                into out: UnsafeMutableRawBufferPointer, threads: Int = defaultThreads, firstRow: Int = 0,
                                importance: UnsafeBufferPointer<Float>? = nil) throws -> Sums {
        guard type.isQuantized, let need = type.byteCount(rows: rows, cols: cols, group: group), let kt = kernelType(type) else {
            throw SinkKitError(.invalidArgument, "group size \(group) does not divide the row length \(cols)")
        }
        if let w = importance, w.count != cols {
            throw SinkKitError(.invalidArgument, "importance has \(w.count) values for rows of \(cols)")
        }
        guard src.count == rows * cols, out.count == need else {
            throw SinkKitError(.invalidArgument, "quantize: \(src.count) inputs / \(out.count) output bytes for \(rows) × \(cols) \(type.userName)")
        }
        let blocksPerRow = cols / group
        let rowBytes = blocksPerRow * type.blockBytes(group: group)
        let chunks = max(1, min(rows, threads * 8))
        var partial = [(Double, Double, Int64)](repeating: (0, 0, -1), count: chunks)
        partial.withUnsafeMutableBufferPointer { results in
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let r0 = rows * c / chunks, r1 = rows * (c + 1) / chunks
                var sums = [0.0, 0.0]
                let dst = out.baseAddress!.assumingMemoryBound(to: UInt8.self) + r0 * rowBytes
                let status: Int64
                if let w = importance, type != .int8 {
                    status = sk_quantize_blocks_weighted(kt, src.baseAddress! + r0 * cols, (r1 - r0) * blocksPerRow, Int32(group),
                                                         w.baseAddress!, cols, dst, &sums)
                } else {
                    status = sk_quantize_blocks(kt, src.baseAddress! + r0 * cols, (r1 - r0) * blocksPerRow, Int32(group), dst, &sums)
                }
                results[c] = (sums[0], sums[1], status < 0 ? status : Int64(r0 * cols) + status)
            }
        }
        if let bad = partial.first(where: { $0.2 >= 0 }) {
            let i = Int(bad.2)
            throw SinkKitError(.nonFinite, "non-finite value \(src[i]) at row \(firstRow + i / cols), column \(i % cols)")
        }
        if partial.contains(where: { $0.2 == -2 }) {
            throw SinkKitError(.invalidArgument, "quantize: \(type.userName) does not take group \(group)")
        }
        try checkScalesFinite(src, out: UnsafeRawBufferPointer(out), cols: cols, type: type, group: group, firstRow: firstRow)
        return Sums(squaredError: partial.reduce(0) { $0 + $1.0 }, squaredValue: partial.reduce(0) { $0 + $1.1 })
    }

    /// Values so large that a block's f16 scale (or minimum) rounds to infinity cannot be stored in
    /// SKM's block types (|x| up to about 65504 × 127 for int8, 65504 × 7 for int4-sym, 65504 for
    /// int4's minimum): refused, naming the block, rather than written as ±inf scales that decode to NaN.
    static func checkScalesFinite(_ src: UnsafeBufferPointer<Float>, out: UnsafeRawBufferPointer, cols: Int, type: QuantType,
                                  group: Int, firstRow: Int) throws {
        let bb = type.blockBytes(group: group), halves = type == .int4 ? 2 : 1
        for b in 0..<(out.count / bb) {
            for k in 0..<halves {
                let bits = UInt16(out[b * bb + 2 * k]) | UInt16(out[b * bb + 2 * k + 1]) << 8
                guard bits & 0x7C00 == 0x7C00 else { continue }
                let start = b * group
                let amax = src[start..<(start + group)].map { abs($0) }.max() ?? 0
                throw SinkKitError(.nonFinite, "values up to \(amax) in the block at row \(firstRow + start / cols), columns \(start % cols)..<\(start % cols + group) are too large for \(type.userName)'s f16 \(k == 0 ? "scale" : "minimum") (keep this tensor f32 with --tensor-type)")
            }
        }
    }

    public static var defaultThreads: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}
