import Foundation
import SKTestSupport
import XCTest
import SKConvert
import SKCore
import SKRuntime
import SKSafetensors
import SKGGUF
import SKModel

/// The other LLaMA-block families against transformers (Fixtures/generate_families.py): Qwen2
/// (q/k/v biases) and Mistral (sliding-window attention: the mask, and the KV bound that keeps
/// only the window), logits at every position.
final class FamilyTests: XCTestCase {
    static let golden = Fixture.tiny + "/expected/logits-families.safetensors"

    func reference(_ name: String) throws -> (tokens: [Int], logits: [Float]) {
        let f = try SafetensorsFile(path: Self.golden)
        let tokens = try JSONSerialization.jsonObject(with: Data(f.metadata["tokens"]!.utf8)) as! [Int]
        return (tokens, try f.loadF32(name).data)
    }

    func skm(_ base: String, _ type: QuantType) throws -> String {
        let out = Fixture.scratch() + "/\(base)-\(type.userName).skm"
        _ = try SKMConverter(job: QuantizeJob(modelDirectory: Fixture.base(base), type: type, output: out)).run()
        return out
    }

    func relError(_ got: [Float], _ want: [Float]) -> Float {
        zip(got, want).map { abs($0 - $1) }.max()! / want.map(abs).max()!
    }

    func testQwen2LogitsMatchTransformers() throws {
        let (tokens, want) = try reference("qwen2-f32")
        for (type, tol) in [(QuantType.f32, Float(2e-5)), (.f16, 2e-3), (.int8, 0.08)] {
            let m = try LlamaModel(path: try skm("qwen2-f32", type))
            let got = try Session(model: m, context: 64, threads: 2).forward(tokens, logitsFor: Array(0..<tokens.count))
            XCTAssertLessThanOrEqual(relError(got, want), tol, "qwen2 \(type.userName)")
        }
    }

    /// Qwen3: per-head q/k RMSNorm before RoPE, and head_dim 16 with hidden_size 32 (attention 64
    /// wide); prompt at once and token by token.
    func testQwen3LogitsMatchTransformers() throws {
        let (tokens, want) = try reference("qwen3-f32")
        for (type, tol) in [(QuantType.f32, Float(2e-5)), (.f16, 2e-3), (.int8, 0.08)] {
            let m = try LlamaModel(path: try skm("qwen3-f32", type))
            XCTAssertTrue(m.config.qkNorm)
            XCTAssertEqual(m.config.qDim, 64)
            let got = try Session(model: m, context: 64, threads: 2).forward(tokens, logitsFor: Array(0..<tokens.count))
            XCTAssertLessThanOrEqual(relError(got, want), tol, "qwen3 \(type.userName)")
            if type == .f32 {
                let s = try Session(model: m, context: 64, threads: 1)
                var stepped: [Float] = []
                for t in tokens { stepped += try s.forward([t], logitsFor: [0]) }
                XCTAssertLessThanOrEqual(relError(stepped, want), 2e-5, "qwen3 token by token")
            }
        }
    }

    /// Phi-3: fused qkv_proj / gate_up_proj in the checkpoint, split in the SKM file; longrope with
    /// original_max_position_embeddings 8: 12 tokens use the long factors (and the attention
    /// factor), 6 tokens the short ones; the two differ, so the switch is tested.
    func testPhi3LongropeAndFusedProjectionsMatchTransformers() throws {
        let (tokens, want) = try reference("phi3-f32")
        let (_, short) = try reference("phi3-f32-short")
        let vocab = want.count / tokens.count
        for (type, tol) in [(QuantType.f32, Float(2e-5)), (.f16, 2e-3), (.int8, 0.08)] {
            let path = try skm("phi3-f32", type)
            let m = try LlamaModel(path: path)
            XCTAssertEqual(m.config.ropeScalingType, "longrope")
            let got = try Session(model: m, context: 64, threads: 2).forward(tokens, logitsFor: Array(0..<tokens.count))
            XCTAssertLessThanOrEqual(relError(got, want), tol, "phi3 \(type.userName), long factors")
            let gotShort = try Session(model: m, context: 64, threads: 2).forward(Array(tokens.prefix(6)), logitsFor: Array(0..<6))
            XCTAssertLessThanOrEqual(relError(gotShort, short), tol, "phi3 \(type.userName), short factors")
        }
        XCTAssertGreaterThan(relError(Array(want.prefix(6 * vocab)), short), 0.01, "the long factors change these logits")
    }

    /// Llama 3.x: llama3 RoPE (every branch of its rule within 12 tokens) and tied embeddings, from
    /// the Hugging Face directory and from a GGUF that carries the rule as llama.cpp does
    /// (rope_freqs.weight, read as longrope with equal short and long factors): both give
    /// transformers' logits.
    func testLlama3RopeFromCheckpointAndFromGGUF() throws {
        let (tokens, want) = try reference("llama3-f32")
        for source in [Fixture.base("llama3-f32"), Fixture.root + "/Fixtures/gguf/tiny-llama3.gguf"] {
            let out = Fixture.scratch() + "/llama3-\(source.hasSuffix(".gguf") ? "gguf" : "hf").skm"
            _ = try SKMConverter(job: QuantizeJob(modelDirectory: source, type: .f32, output: out)).run()
            let m = try LlamaModel(path: out)
            XCTAssertTrue(m.config.tieWordEmbeddings)
            XCTAssertEqual(m.config.ropeScalingType, source.hasSuffix(".gguf") ? "longrope" : "llama3")
            let got = try Session(model: m, context: 64, threads: 2).forward(tokens, logitsFor: Array(0..<tokens.count))
            XCTAssertLessThanOrEqual(relError(got, want), 2e-5, source)
            let q8 = Fixture.scratch() + "/llama3-int8.skm"
            _ = try SKMConverter(job: QuantizeJob(modelDirectory: source, type: .int8, output: q8)).run()
            let got8 = try Session(model: try LlamaModel(path: q8), context: 64, threads: 2).forward(tokens, logitsFor: Array(0..<tokens.count))
            XCTAssertLessThanOrEqual(relError(got8, want), 0.08, source + " int8")
            guard source.hasSuffix(".gguf") else {
                // the llama3 rule as rope_freqs: the divisors the fixture computed as llama.cpp's converter does
                let ggufFreqs = try { () throws -> [Float] in
                    let gf = try GGUFFile(path: Fixture.root + "/Fixtures/gguf/tiny-llama3.gguf")
                    return try gf.dequantize(gf.tensor("rope_freqs.weight")!)
                }()
                let ours = GGUFExporter.ropeFreqFactors(try LlamaConfig(path: source + "/config.json"))!
                XCTAssertEqual(ours.count, ggufFreqs.count)
                for (a, b) in zip(ours, ggufFreqs) { XCTAssertEqual(a, b, accuracy: 1e-6 * b) }
                continue
            }
            // and back out: a GGUF with rope_freqs.weight, read in again, runs the same
            let g = Fixture.scratch() + "/llama3-out.gguf"
            _ = try GGUFExporter.export(skm: out, output: g, force: true)
            let back = Fixture.scratch() + "/llama3-back.skm"
            _ = try SKMConverter(job: QuantizeJob(modelDirectory: g, type: .f32, output: back)).run()
            let again = try Session(model: try LlamaModel(path: back), context: 64, threads: 2).forward(tokens, logitsFor: Array(0..<tokens.count))
            XCTAssertLessThanOrEqual(relError(again, want), 2e-5, source + " → GGUF → SKM")
        }
    }

    /// Gemma 2: GeGLU (tanh GELU), (1 + w) norms before and after attention and MLP, embeddings ×
    /// √hidden, attention scale from query_pre_attn_scalar, attention and final soft-capping small
    /// enough to change the logits, sliding window 4 on layer 0 only (full attention on layer 1),
    /// tied embeddings: prompt at once and token by token.
    func testGemma2MatchesTransformers() throws {
        let (tokens, want) = try reference("gemma2-f32")
        // (int8: 0.1 here, the soft-capped logits of this random model are all within ±3)
        for (type, tol) in [(QuantType.f32, Float(2e-5)), (.f16, 2e-3), (.int8, 0.1)] {
            let m = try LlamaModel(path: try skm("gemma2-f32", type))
            XCTAssertEqual(m.config.slidingWindow(layer: 0), 4)
            XCTAssertNil(m.config.slidingWindow(layer: 1))
            let got = try Session(model: m, context: 64, threads: 2).forward(tokens, logitsFor: Array(0..<tokens.count))
            XCTAssertLessThanOrEqual(relError(got, want), tol, "gemma2 \(type.userName)")
            XCTAssertLessThanOrEqual(got.map(abs).max()!, 3, "final soft-capping at 3")
            if type == .f32 {
                XCTAssertThrowsError(try GGUFExporter.export(skm: m.file.path, output: Fixture.scratch() + "/g.gguf", force: true)) { e in
                    XCTAssertTrue("\(e)".contains("Gemma 2 model has no llama GGUF form"), "\(e)")
                }
            }
            if type == .f32 {
                let s = try Session(model: m, context: 64, threads: 1)
                var stepped: [Float] = []
                for t in tokens { stepped += try s.forward([t], logitsFor: [0]) }
                XCTAssertLessThanOrEqual(relError(stepped, want), 2e-5, "gemma2 token by token")
            }
        }
    }

    /// sliding_window 4 over 12 tokens: the prompt at once (blocked attention, masked), and token by
    /// token (decode attention, the cache bounded to the window and evicting), both equal to
    /// transformers; and both differ from the same model without a window (the test can fail).
    func testMistralSlidingWindowMatchesTransformers() throws {
        let (tokens, want) = try reference("mistral-f32")
        let (_, unwindowed) = try reference("mistral-f32-no-window")
        let n = tokens.count, vocab = want.count / n
        XCTAssertGreaterThan(relError(unwindowed, want), 0.05, "the window changes these logits")
        let m = try LlamaModel(path: try skm("mistral-f32", .f32))
        XCTAssertEqual(m.config.slidingWindow, 4)
        let prompt = try Session(model: m, context: 64, threads: 2).forward(tokens, logitsFor: Array(0..<n))
        XCTAssertLessThanOrEqual(relError(prompt, want), 2e-5, "prefill")
        let s = try Session(model: m, context: 64, threads: 2)
        XCTAssertEqual(s.attention.policy.budget, 4, "the cache is bounded to the window")
        var stepped: [Float] = []
        for t in tokens { stepped += try s.forward([t], logitsFor: [0]) }
        XCTAssertEqual(stepped.count, n * vocab)
        XCTAssertLessThanOrEqual(relError(stepped, want), 2e-5, "token by token")
        XCTAssertLessThanOrEqual(s.cache.maxSlots, 4, "only the window is kept between steps")
        XCTAssertLessThanOrEqual(s.cache.capacity, 4 + s.attention.chunk)
        // Quantized and run end to end: the same logits within the types' tolerances.
        for (type, tol) in [(QuantType.f16, Float(2e-3)), (.int8, 0.08)] {
            let q = try LlamaModel(path: try skm("mistral-f32", type))
            XCTAssertLessThanOrEqual(relError(try Session(model: q, context: 64, threads: 2).forward(tokens, logitsFor: Array(0..<n)), want), tol, "mistral \(type.userName)")
        }
        // A context within the window needs no bound: full cache, same logits.
        let small = try Session(model: m, context: 4, threads: 2)
        XCTAssertNil(small.attention.policy.budget)
        XCTAssertLessThanOrEqual(relError(try small.forward(Array(tokens.prefix(4)), logitsFor: Array(0..<4)), Array(want.prefix(4 * vocab))), 2e-5)
    }
}
