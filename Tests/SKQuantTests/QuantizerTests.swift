import Foundation
import SKTestSupport
import XCTest
import SKCore
import SKQuant
import SKSafetensors

/// Deterministic test data: Gaussian rows and heavy-tailed (Student-t, 3 degrees of freedom) rows.
struct TestRNG {
    var s: UInt64
    mutating func next() -> UInt64 { s &+= 0x9E37_79B9_7F4A_7C15; var z = s; z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9; z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB; return z ^ (z >> 31) }
    mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) / Double(1 << 53) }
    mutating func gaussian() -> Double { (-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform()) }
    mutating func studentT3() -> Double {
        let z = gaussian()
        let chi = gaussian() * gaussian() + gaussian() * gaussian() + gaussian() * gaussian()
        return z / max(chi / 3, 1e-6).squareRoot()
    }
    static func rows(_ n: Int, heavy: Bool, seed: UInt64 = 7) -> [Float] {
        var r = TestRNG(s: seed)
        return (0..<n).map { _ in Float((heavy ? r.studentT3() : r.gaussian()) * 0.02) }
    }
}

/// Plain round-to-nearest baselines, transcribed from gguf-py's numpy quantizers
/// (`gguf/quants.py`: Q8_0, Q4_0, Q4_1, Q5_0), in f32 as numpy does them.
enum Baseline {
    static func roundf(_ v: Float) -> Float { v.rounded(.toNearestOrAwayFromZero) }
    static func q8_0(_ x: ArraySlice<Float>) -> [Float] {
        let d = x.map(abs).max()! / 127
        let id: Float = d == 0 ? 0 : 1 / d
        let d16 = Float(Float16(d))
        return x.map { d16 * roundf($0 * id) }
    }
    static func q4_0(_ x: ArraySlice<Float>) -> [Float] {
        var mx: Float = 0
        for v in x where abs(v) > abs(mx) { mx = v }
        let d = mx / -8
        let id: Float = d == 0 ? 0 : 1 / d
        let d16 = Float(Float16(d))
        return x.map { d16 * (min(15, ($0 * id + 8.5).rounded(.towardZero)) - 8) }
    }
    static func q5_0(_ x: ArraySlice<Float>) -> [Float] {
        var mx: Float = 0
        for v in x where abs(v) > abs(mx) { mx = v }
        let d = mx / -16
        let id: Float = d == 0 ? 0 : 1 / d
        let d16 = Float(Float16(d))
        return x.map { d16 * (min(31, ($0 * id + 16.5).rounded(.towardZero)) - 16) }
    }
    /// Round-to-nearest with a max-abs scale: codes −7…7, `d = amax / 7`.
    static func symMaxAbs(_ x: ArraySlice<Float>) -> [Float] {
        let d = x.map(abs).max()! / 7
        let id: Float = d == 0 ? 0 : 1 / d
        let d16 = Float(Float16(d))
        return x.map { d16 * min(7, max(-7, roundf($0 * id))) }
    }
    static func q4_1(_ x: ArraySlice<Float>) -> [Float] {
        let lo = x.min()!, hi = x.max()!
        let d = (hi - lo) / 15
        let id: Float = d == 0 ? 0 : 1 / d
        let d16 = Float(Float16(d)), m16 = Float(Float16(lo))
        return x.map { d16 * min(15, (($0 - lo) * id + 0.5).rounded(.towardZero)) + m16 }
    }
}

final class QuantizerTests: XCTestCase {
    let types: [(QuantType, Int)] = [(.int8, 32), (.int4, 32), (.int4, 64), (.int4, 128), (.int4Sym, 32), (.int4Sym, 64), (.int4Sym, 128),
                                   (.int5Sym, 32), (.int5Sym, 64), (.int5Sym, 128)]

    func quantize(_ x: [Float], rows: Int, _ t: QuantType, _ g: Int) -> ([UInt8], Double) {
        var out = [UInt8](repeating: 0, count: t.byteCount(rows: rows, cols: x.count / rows, group: g)!)
        let sse = x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { try! BlockQuantizer.quantize(src, rows: rows, cols: x.count / rows, type: t, group: g, into: $0).squaredError }
        }
        return (out, sse)
    }

    func testNonFiniteInputAndBadGroupRefused() {
        var x = [Float](repeating: 1, count: 64)
        x[40] = .nan
        var out = [UInt8](repeating: 0, count: 40)
        XCTAssertThrowsError(try x.withUnsafeBufferPointer { s in try out.withUnsafeMutableBytes { try BlockQuantizer.quantize(s, rows: 1, cols: 64, type: .int4, group: 32, into: $0) } }) {
            XCTAssertEqual(($0 as! SinkKitError).kind, .nonFinite)
            XCTAssertTrue(($0 as! SinkKitError).message.contains("column 40"))
        }
        x[40] = 1
        XCTAssertThrowsError(try x.withUnsafeBufferPointer { s in try out.withUnsafeMutableBytes { try BlockQuantizer.quantize(s, rows: 1, cols: 64, type: .int4, group: 128, into: $0) } })
    }

    func testBlockSizesAreFixed() {
        XCTAssertEqual(QuantType.int8.blockBytes(group: 32), 34)
        XCTAssertEqual(QuantType.int4.blockBytes(group: 32), 20)
        XCTAssertEqual(QuantType.int4Sym.blockBytes(group: 32), 18)
        XCTAssertEqual(QuantType.int8.bitsPerWeight(group: 32), 8.5)
        XCTAssertEqual(QuantType.int4.bitsPerWeight(group: 32), 5.0)
        XCTAssertEqual(QuantType.int4Sym.bitsPerWeight(group: 64), 4.25)
        XCTAssertNil(QuantType.int4.byteCount(rows: 2, cols: 576, group: 128))
        XCTAssertEqual(QuantType.int5Sym.blockBytes(group: 32), 22)   // Q5_0's size
        XCTAssertEqual(QuantType.int5Sym.bitsPerWeight(group: 32), 5.5)
    }

    /// The fast quantizer and the scalar reference produce the same bytes.
    func testFastMatchesReference() {
        var data = TestRNG.rows(16 * 256, heavy: false) + TestRNG.rows(16 * 256, heavy: true, seed: 9)
        for j in 0..<128 { data[j] = 0 }                  // an all-zero block
        for j in 128..<256 { data[j] = 0.5 }              // a constant block
        data[300] = 3                                     // a lone outlier
        for (t, g) in types {
            let (fast, _) = quantize(data, rows: 32, t, g)
            let bb = t.blockBytes(group: g)
            for b in 0..<(data.count / g) {
                let ref = QuantizeReference.quantizeBlock(Array(data[(b * g)..<((b + 1) * g)]), type: t)
                XCTAssertEqual(Array(fast[(b * bb)..<((b + 1) * bb)]), ref, "\(t) group \(g) block \(b)")
                if Array(fast[(b * bb)..<((b + 1) * bb)]) != ref { break }
            }
            // The dequantizers agree too.
            let deq = fast.withUnsafeBytes { Dequantize.tensor($0, type: t, group: g, rows: 32, cols: data.count / 32) }
            XCTAssertEqual(Array(deq[0..<g]), QuantizeReference.dequantizeBlock(Array(fast[0..<bb]), type: t, group: g))
        }
    }

    func rmse(_ a: [Float], _ b: [Float]) -> Double {
        (zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(a.count)).squareRoot()
    }

    func ours(_ x: [Float], _ t: QuantType, _ g: Int) -> [Float] {
        let (q, _) = quantize(x, rows: 1, t, g)
        return q.withUnsafeBytes { Dequantize.tensor($0, type: t, group: g, rows: 1, cols: x.count) }
    }

    func baseline(_ x: [Float], _ f: (ArraySlice<Float>) -> [Float], _ g: Int) -> [Float] {
        stride(from: 0, to: x.count, by: g).flatMap { f(x[$0..<($0 + g)]) }
    }

    /// Named error budgets: int8 ≤ 1.01 × numpy Q8_0; searched int4 ≤ 0.9 × round-to-nearest.
    func assertBudgets(_ x: [Float], _ label: String) {
        // (On data already on Q8_0's grid both errors are 0: compare products, not ratios.)
        let (o8, b8) = (rmse(ours(x, .int8, 32), x), rmse(baseline(x, Baseline.q8_0, 32), x))
        XCTAssertLessThanOrEqual(o8, Budget.int8VsQ8_0 * b8, "\(label): int8 vs Q8_0 RMSE")
        let int8 = b8 == 0 ? (o8 == 0 ? 1 : .infinity) : o8 / b8
        let a = rmse(ours(x, .int4, 32), x) / rmse(baseline(x, Baseline.q4_1, 32), x)
        XCTAssertLessThanOrEqual(a, Budget.int4VsRoundToNearest, "\(label): int4 / RTN (Q4_1) RMSE")
        let sym = rmse(ours(x, .int4Sym, 32), x)
        let s = sym / rmse(baseline(x, Baseline.symMaxAbs, 32), x)
        XCTAssertLessThanOrEqual(s, Budget.int4VsRoundToNearest, "\(label): int4-sym / RTN (max-abs) RMSE")
        let s0 = sym / rmse(baseline(x, Baseline.q4_0, 32), x)
        XCTAssertLessThanOrEqual(s0, Budget.int4SymVsQ4_0, "\(label): int4-sym / Q4_0 RMSE")
        let sym5 = rmse(ours(x, .int5Sym, 32), x)
        XCTAssertLessThanOrEqual(sym5 / rmse(baseline(x, Baseline.q5_0, 32), x), Budget.int5SymVsQ5_0, "\(label): int5-sym / Q5_0 RMSE")
        XCTAssertLessThanOrEqual(sym5 / sym, Budget.int5SymVsInt4Sym, "\(label): int5-sym / int4-sym RMSE")
        print(String(format: "%@: RMSE ratios int5-sym/Q5_0 %.4f, int5-sym/int4-sym %.4f", label, sym5 / rmse(baseline(x, Baseline.q5_0, 32), x), sym5 / sym))
        print(String(format: "%@: RMSE ratios int8/Q8_0 %.4f, int4/RTN(Q4_1) %.4f, int4-sym/RTN(max-abs) %.4f, int4-sym/Q4_0 %.4f", label, int8, a, s, s0))
    }

    func testErrorBudgetsGaussian() { assertBudgets(TestRNG.rows(1 << 16, heavy: false), "gaussian") }
    func testErrorBudgetsHeavyTailed() { assertBudgets(TestRNG.rows(1 << 16, heavy: true), "student-t3") }

    /// The real model's token embedding sits on Q8_0's 8-bit grid, not a 4-bit one.
    func testErrorBudgetsRealEmbedding() throws {
        guard try RealModel.available() else { throw XCTSkip("real SmolLM2 not built") }
        let f = try SafetensorsFile(path: RealModel.checkpoint + "/model.safetensors")
        let e = try f.loadF32("model.embed_tokens.weight")
        assertBudgets(Array(e.data[0..<(576 * 4096)]), "smollm2 embed_tokens (4096 rows)")
    }
}
