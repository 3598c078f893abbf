import Foundation
import SKTestSupport
import XCTest
import SKConvert
import SKCore
import SKFormat
@testable import SKRuntime
import SKModel
import SKSafetensors

/// The forward pass on the tiny fixture models against transformers' logits
/// (Fixtures/tiny/expected/logits.safetensors), at every storage type.
final class ForwardTests: XCTestCase {
    static var files: [String: String] = [:]

    func skm(_ base: String, _ type: QuantType) throws -> String {
        let key = "\(base)-\(type.userName)"
        if let f = Self.files[key] { return f }
        let out = Fixture.scratch() + "/\(key).skm"
        _ = try SKMConverter(job: QuantizeJob(modelDirectory: Fixture.base(base), type: type, output: out)).run()
        Self.files[key] = out
        return out
    }

    func reference(_ name: String) throws -> (tokens: [Int], logits: [Float]) {
        let f = try SafetensorsFile(path: Fixture.expected("logits"))
        let tokens = try JSONSerialization.jsonObject(with: Data(f.metadata["tokens"]!.utf8)) as! [Int]
        return (tokens, try f.loadF32(name).data)
    }

    func maxError(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max()! }

    func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var ab = 0.0, aa = 0.0, bb = 0.0
        for i in 0..<a.count { ab += Double(a[i] * b[i]); aa += Double(a[i] * a[i]); bb += Double(b[i] * b[i]) }
        return ab / (aa * bb).squareRoot()
    }

    func testLogitsMatchTransformers() throws {
        for base in ["llama-f32", "llama-tied-f32", "llama-bias-f32"] {
            let (tokens, want) = try reference(base)
            let scale = want.map(abs).max()!
            for (type, tol, minCosine) in [(QuantType.f32, Float(2e-5), 0.999_999), (.f16, 2e-3, 0.9999),
                                           (.int8, 0.08, 0.999), (.int4, 0.5, 0.93), (.int4Sym, 0.5, 0.93), (.int5Sym, 0.25, 0.98)]
                where base != "llama-bias-f32" || !type.isQuantized {  // bias: exact types suffice
                let m = try LlamaModel(path: try skm(base, type))
                let got = try Session(model: m, context: 64, threads: 2).forward(tokens, logitsFor: Array(0..<tokens.count))
                let err = maxError(got, want) / scale
                XCTAssertLessThanOrEqual(err, tol, "\(base) \(type.userName): max |logit error| / max |logit| = \(err)")
                XCTAssertGreaterThanOrEqual(cosine(got, want), minCosine, "\(base) \(type.userName)")
            }
        }
    }

    /// Sessions stepped together by `BatchForward` (prefill chunks and one-token decode steps in
    /// one batch) get bit for bit the logits each gets alone, at every storage type.
    func testBatchedSessionsGetExactlyTheirOwnLogits() throws {
        let (tokens, _) = try reference("llama-f32")
        for type in [QuantType.f32, .int8, .int4] {
            let m = try LlamaModel(path: try skm("llama-f32", type))
            let promptA = Array(tokens[0..<9]), promptB = Array(tokens[3..<12]).reversed().map { $0 }
            func alone(_ prompt: [Int], steps: Int) throws -> [[Float]] {
                let s = try Session(model: m, context: 64, threads: 2)
                var out = [try s.forward(prompt, logitsFor: [prompt.count - 1])]
                for _ in 0..<steps { out.append(try s.forward([Sampler.argmax(out.last![...])], logitsFor: [0])) }
                return out
            }
            let wantA = try alone(promptA, steps: 6), wantB = try alone(promptB, steps: 6)
            let a = try Session(model: m, context: 64, threads: 2), b = try Session(model: m, context: 64, threads: 2)
            let batch = BatchForward(model: m, threads: 2)
            // A prefills alone, then decodes while B prefills beside it; then both decode together.
            var gotA = try batch.step([ForwardSegment(session: a, tokens: promptA, logitsFor: [promptA.count - 1])])
            var r = try batch.step([ForwardSegment(session: a, tokens: [Sampler.argmax(gotA[0][...])], logitsFor: [0]),
                                    ForwardSegment(session: b, tokens: promptB, logitsFor: [promptB.count - 1])])
            var histA = [gotA[0], r[0]], histB = [r[1]]
            for _ in 0..<5 {
                r = try batch.step([ForwardSegment(session: b, tokens: [Sampler.argmax(histB.last![...])], logitsFor: [0]),
                                    ForwardSegment(session: a, tokens: [Sampler.argmax(histA.last![...])], logitsFor: [0])])
                histB.append(r[0]); histA.append(r[1])
            }
            gotA = histA
            XCTAssertEqual(gotA, Array(wantA.prefix(gotA.count)), "\(type.userName): session A batched vs alone")
            XCTAssertEqual(histB, Array(wantB.prefix(histB.count)), "\(type.userName): session B batched vs alone")
        }
    }

    /// `mlp_bias`: gate/up/down_proj biases (transformers' LlamaMLP with mlp_bias=True). The file
    /// used to record the flag without the runtime reading the biases.
    func testMLPBiasMatchesTransformers() throws {
        let f = try SafetensorsFile(path: Fixture.tiny + "/expected/logits-mlp-bias.safetensors")
        let tokens = try JSONSerialization.jsonObject(with: Data(f.metadata["tokens"]!.utf8)) as! [Int]
        let want = try f.loadF32("llama-mlp-bias-f32").data
        let scale = want.map(abs).max()!
        for (type, tol) in [(QuantType.f32, Float(2e-5)), (.f16, 2e-3), (.int8, 0.08)] {
            let m = try LlamaModel(path: try skm("llama-mlp-bias-f32", type))
            XCTAssertNotNil(m.layers[0].downBias)
            let got = try Session(model: m, context: 64, threads: 2).forward(tokens, logitsFor: Array(0..<tokens.count))
            XCTAssertLessThanOrEqual(maxError(got, want) / scale, tol, "mlp_bias \(type.userName)")
        }
    }

    /// The integer kernels (activations quantized to int8 per block of 32) against the same
    /// quantized weights run in f32: the SKM file's tensors dequantized into an f32 SKM file.
    /// This isolates the matmul path from the weights' own quantization error.
    func testIntegerMatmulsMatchDequantizedWeightsInF32() throws {
        let (tokens, _) = try reference("llama-f32")
        for type in [QuantType.int8, .int4, .int4Sym, .int5Sym] {
            let q = try SKMFile(path: try skm("llama-f32", type))
            let f32Path = Fixture.scratch() + "/deq.skm"
            let infos = q.tensors.map { SKMTensorInfo(name: $0.name, type: .f32, group: 0, shape: $0.shape) }
            let w = try SKMWriter(path: f32Path, metadata: q.metadataKeys.map { ($0, q.metadata[$0]!) }, tensors: infos)
            for t in q.tensors {
                let x = try q.withRawBytes(t) { Dequantize.tensor($0, type: t.type, group: t.group, rows: t.rows, cols: t.cols) }
                try x.withUnsafeBytes { try w.write(name: t.name, raw: $0) }
            }
            try w.finish()
            let a = try Session(model: try LlamaModel(path: q.path), context: 64, threads: 2).forward(tokens, logitsFor: Array(0..<tokens.count))
            let b = try Session(model: try LlamaModel(path: f32Path), context: 64, threads: 2).forward(tokens, logitsFor: Array(0..<tokens.count))
            let err = maxError(a, b) / b.map(abs).max()!
            XCTAssertLessThanOrEqual(err, 0.06, "\(type.userName): integer path vs f32 on the same weights")
            XCTAssertGreaterThanOrEqual(cosine(a, b), 0.999, type.userName)
        }
    }

    /// Prompt processing (all tokens at once: sgemm, batched integer kernels) and decoding (one
    /// token at a time) give the same logits.
    func testBatchAndTokenByTokenAgree() throws {
        let (tokens, _) = try reference("llama-f32")
        for type in [QuantType.f32, .f16, .int4] {
            let m = try LlamaModel(path: try skm("llama-f32", type))
            let batch = try Session(model: m, context: 64, threads: 2).forward(tokens, logitsFor: [tokens.count - 1])
            let s = try Session(model: m, context: 64, threads: 1)
            var last: [Float] = []
            for t in tokens { last = try s.forward([t], logitsFor: [0]) }
            XCTAssertLessThanOrEqual(maxError(batch, last), 1e-4, type.userName)
        }
    }

    /// The load's x8 repacking, spread over threads in chunks of rows, writes the same bytes at
    /// any thread count (chunks of 8 rows here, so every matrix crosses chunk boundaries).
    func testPackingIsTheSameAtAnyThreadCount() throws {
        let saved = WeightMatrix.packChunkBytes
        WeightMatrix.packChunkBytes = 64
        defer { WeightMatrix.packChunkBytes = saved }
        for type in [QuantType.int8, .int4, .int4Sym] {
            let path = try skm("llama-f32", type)
            let one = try LlamaModel(path: path, threads: 1), three = try LlamaModel(path: path, threads: 3)
            var compared = 0
            for (a, b) in zip(one.layers.flatMap { [$0.q, $0.k, $0.v, $0.o, $0.gate, $0.up, $0.down] } + [one.head],
                              three.layers.flatMap { [$0.q, $0.k, $0.v, $0.o, $0.gate, $0.up, $0.down] } + [three.head]) {
                guard let pa = a.packed, let pb = b.packed else { continue }
                let n = a.packedGroupBytes * (a.rows / 8)
                XCTAssertGreaterThan(a.rows / 8, 1, a.name)
                XCTAssertEqual(memcmp(pa, pb, n), 0, "\(type.userName) \(a.name)")
                var unpacked = [Float](repeating: 0, count: a.cols), direct = [Float](repeating: 0, count: a.cols)
                for r in [0, a.rows / 2 + 3, a.rows - 1] {
                    a.dequantizeRow(r, into: &unpacked)
                    let bb = a.type.blockBytes(group: 32)   // (the head may have its own type)
                    direct.withUnsafeMutableBufferPointer { d in
                        for blk in 0..<(a.cols / 32) { Dequantize.block(a.row(r) + blk * bb, type: a.type, group: 32, into: d.baseAddress! + blk * 32) }
                    }
                    XCTAssertEqual(unpacked, direct, "\(type.userName) \(a.name) row \(r)")
                }
                compared += 1
            }
            XCTAssertEqual(compared, 7 * one.layers.count + 1, "\(type.userName): every matrix packed (x8 kernels on this CPU)")
        }
    }

    func testSamplingIsDeterministicAtAnyThreadCount() throws {
        let m = try LlamaModel(path: try skm("llama-f32", .int4))
        func run(_ threads: Int) throws -> [Int] {
            let s = try Session(model: m, context: 64, threads: threads)
            var sampler = Sampler(seed: 7)
            sampler.temperature = 1.0
            var out: [Int] = [], logits = try s.forward([1, 5, 9], logitsFor: [2])
            for _ in 0..<20 {
                let t = sampler.sample(logits[...], history: out)
                out.append(t)
                logits = try s.forward([t], logitsFor: [0])
            }
            return out
        }
        let one = try run(1)
        XCTAssertEqual(one, try run(2))
        XCTAssertEqual(one, try run(3))
        XCTAssertGreaterThan(Set(one).count, 3, "temperature 1 should not be greedy")
    }

    func testContextOverflowAndBadTokensAreErrors() throws {
        let m = try LlamaModel(path: try skm("llama-f32", .f32))
        let s = try Session(model: m, context: 4, threads: 1)
        XCTAssertThrowsError(try s.forward([1, 2, 3, 4, 5], logitsFor: [4]))
        XCTAssertThrowsError(try s.forward([999], logitsFor: [0]))
    }

    func testRopeScalingVariantsFollowTransformers() throws {
        // inverse frequencies for head_dim 8, theta 10000, against values computed by
        // transformers' ROPE_INIT_FUNCTIONS (linear factor 4; llama3 factor 8, low 1, high 4, original 16)
        let meta = try SKMFile(path: try skm("llama-f32", .f32)).metadata
        // The file's config with another rope_scaling (and max_position_embeddings): model.config
        // and the llama.* keys rewritten together, as the converter writes them.
        func config(_ rope: [String: Any], maxPositions: Int? = nil) throws -> ModelConfig {
            var raw = try JSONSerialization.jsonObject(with: Data(meta["model.config"]!.string!.utf8)) as! [String: Any]
            raw["rope_scaling"] = rope
            if let m = maxPositions { raw["max_position_embeddings"] = m }
            let c = try LlamaConfig(data: try JSONSerialization.data(withJSONObject: raw))
            var m = meta
            for k in m.keys where k.hasPrefix("llama.") { m[k] = nil }
            for (k, v) in try c.metadataEntries() { m[k] = v }
            return try ModelConfig(metadata: m, path: "x")
        }
        let lin = Rope(config: try config(["type": "linear", "factor": 4.0]))
        let base = [1.0, 0.1, 0.01, 0.001]
        for i in 0..<4 { XCTAssertEqual(lin.invFreq[i], base[i] / 4, accuracy: 1e-12) }
        let l3 = Rope(config: try config(["rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                          "original_max_position_embeddings": 16]))
        let want = RopeGolden.llama3
        for i in 0..<4 { XCTAssertEqual(l3.invFreq[i], want[i], accuracy: 1e-6 * want[i]) }  // transformers computes in f32
        let yarn = Rope(config: try config(["rope_type": "yarn", "factor": 4.0, "beta_fast": 32.0, "beta_slow": 1.0,
                                            "original_max_position_embeddings": 16]))
        for i in 0..<4 { XCTAssertEqual(yarn.invFreq[i], RopeGolden.yarn[i], accuracy: 1e-6 * RopeGolden.yarn[i]) }
        XCTAssertEqual(yarn.attentionFactor, RopeGolden.yarnAttentionFactor, accuracy: 1e-9)
        var dyn = Rope(config: try config(["rope_type": "dynamic", "factor": 2.0], maxPositions: 16))
        for i in 0..<4 { XCTAssertEqual(dyn.invFreq[i], base[i], accuracy: 1e-12) }  // within the original context
        dyn.adapt(toSequenceLength: 40)
        for i in 0..<4 { XCTAssertEqual(dyn.invFreq[i], RopeGolden.dynamic40[i], accuracy: 1e-6 * RopeGolden.dynamic40[i]) }
    }
}
