import Foundation
import SKConvert
import SKCore
import SKEngine
@testable import SKServer
import SKFormat
import SKQuant
import SKRuntime
import SKSafetensors
import SKTestSupport
import XCTest

/// The quality tools of issue 13: calibration (against a numpy computation of the same
/// statistic), the importance-weighted quantizer, run-time LoRA (against PEFT's merge, as SinkKit
/// merges it), KL divergence, precise prompts, the fine-tune-delta check.
final class QualityToolsTests: XCTestCase {
    func skconv(_ args: [String]) throws -> Executable.Result { try Executable.run("skconv", args) }

    func tinySKM(_ base: String = "llama-f32", _ type: String = "f32", adapter: [String] = []) throws -> String {
        let out = Fixture.scratch() + "/\(base)-\(type).skm"
        let r = try skconv(["quantize", "--model", Fixture.base(base), "--type", type, "--output", out] + adapter)
        guard r.status == 0 else { throw SinkKitTestError(r.stderr) }
        return out
    }

    /// `skconv calibrate` collects, per weight, the mean square of each input column: compared
    /// with scripts/numpy_imatrix.py on the same windows (relative 1e-4).
    func testCalibrationMatchesNumpy() throws {
        let model = try tinySKM()
        let text = Fixture.scratch() + "/cal.txt"
        try String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 8).write(toFile: text, atomically: true, encoding: .utf8)
        let out = Fixture.scratch() + "/tiny.imatrix"
        let r = try skconv(["calibrate", model, "-f", text, "-c", "16", "--chunks", "2", "--output", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let rt = try Runtime(path: model)
        var tokens = rt.tokenizer.encode(try String(contentsOfFile: text, encoding: .utf8), addSpecialTokens: true)
        tokens = Array(tokens.prefix(32))
        if rt.addsBOS, let b = rt.tokenizer.bosId { tokens[0] = b; tokens[16] = b }
        let ref = Fixture.scratch() + "/ref.json"
        let p = try Executable.python("numpy_imatrix.py", [Fixture.base("llama-f32"), "16", ref] + tokens.map(String.init))
        XCTAssertEqual(p.status, 0, p.stderr)
        let want = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ref))) as! [String: [Double]]
        let got = try ImportanceMatrix(path: out)
        XCTAssertEqual(Set(got.values.keys), Set(want.keys))
        for (name, w) in want {
            let g = got.values[name]!
            XCTAssertEqual(g.count, w.count, name)
            for i in 0..<w.count { XCTAssertEqual(Double(g[i]), w[i], accuracy: 1e-4 * max(1, abs(w[i])), "\(name)[\(i)]") }
        }
        XCTAssertTrue(got.provenance.contains("text_sha256"))
    }

    /// With every weight equal the weighted search is the plain rule (the same bytes); with
    /// uneven weights it lowers the weighted error the rule was chosen to minimise.
    func testWeightedQuantizer() throws {
        var rng = SystemRandomNumberGenerator()
        let rows = 64, cols = 128
        let x = (0..<(rows * cols)).map { _ in Float.random(in: -1...1, using: &rng) * Float.random(in: 0.1...2, using: &rng) }
        for type in [QuantType.int4, .int4Sym] {
            let bytes = type.byteCount(rows: rows, cols: cols, group: 32)!
            var plain = [UInt8](repeating: 0, count: bytes), uniform = plain, weighted = plain
            let ones = [Float](repeating: 1, count: cols)
            let imp = (0..<cols).map { i -> Float in i % 7 == 0 ? 50 : Float.random(in: 0.01...1, using: &rng) }
            try x.withUnsafeBufferPointer { src in
                try plain.withUnsafeMutableBytes { _ = try BlockQuantizer.quantize(src, rows: rows, cols: cols, type: type, group: 32, into: $0) }
                try ones.withUnsafeBufferPointer { w in
                    try uniform.withUnsafeMutableBytes { _ = try BlockQuantizer.quantize(src, rows: rows, cols: cols, type: type, group: 32, into: $0, importance: w) }
                }
                try imp.withUnsafeBufferPointer { w in
                    try weighted.withUnsafeMutableBytes { _ = try BlockQuantizer.quantize(src, rows: rows, cols: cols, type: type, group: 32, into: $0, importance: w) }
                }
            }
            XCTAssertEqual(uniform, plain, "\(type.userName): uniform importance is the plain rule")
            func weightedError(_ b: [UInt8]) -> Double {
                let d = b.withUnsafeBytes { Dequantize.tensor($0, type: type, group: 32, rows: rows, cols: cols) }
                var e = 0.0
                for i in 0..<x.count { let r = Double(d[i] - x[i]); e += Double(imp[i % cols]) * r * r }
                return e
            }
            XCTAssertLessThan(weightedError(weighted), 0.9 * weightedError(plain), "\(type.userName): the weighted error falls")
        }
    }

    /// A LoRA adapter applied at run time (skconv adapter + Session.adapter) gives the logits of
    /// the same adapter merged into the weights (skconv quantize --adapter), at f32: plain LoRA,
    /// an embedding LoRA, lora_bias, and LongLoRA's trained embeddings and norms.
    func testRuntimeLoRAEqualsMerge() throws {
        let tokens = [1, 17, 42, 99, 5, 64, 3, 127, 8, 21, 77, 2]
        // LongLoRA-style trained tensors without vocabulary growth: the base's embedding and norms, changed.
        let trained = Fixture.scratch() + "/trained.safetensors"
        let baseFile = try SafetensorsFile(path: Fixture.base("llama-f32") + "/model.safetensors")
        let names = ["model.embed_tokens.weight", "model.norm.weight", "model.layers.0.input_layernorm.weight", "model.layers.1.post_attention_layernorm.weight"]
        let w = try SafetensorsWriter(path: trained, entries: names.map { .init(name: $0, dtype: .F32, shape: baseFile.info($0)!.shape) }, metadata: [:])
        for n in w.order.map(\.name) {
            var t = try baseFile.loadF32(n)
            for i in 0..<t.count { t.data[i] = t.data[i] * 1.1 + 0.01 * Float(i % 7) }
            try w.write(name: n, tensor: t)
        }
        try w.finish()
        for (base, adapter, extra) in [("llama-f32", "plain", [String]()), ("llama-f32", "embedding", []), ("llama-bias-f32", "lora-bias", []),
                                       ("llama-f32", "plain", ["--trainable-params", trained]),
                                       ("phi3-f32", "phi3-lora", [])] {   // fused qkv_proj / gate_up_proj: split into parts
            let a = Fixture.scratch() + "/\(adapter).skm"
            let r = try skconv(["adapter", "--base", Fixture.base(base), "--adapter", Fixture.adapter(adapter), "--output", a, "--matrix-type", "f32"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            let merged = try tinySKM(base, "f32", adapter: ["--adapter", Fixture.adapter(adapter)] + extra)
            let plain = try tinySKM(base, "f32")
            let m = try LlamaModel(path: plain)
            let s = try Session(model: m, context: 64, threads: 2)
            s.adapter = try LoRAAdapter(path: a, model: m)
            let got = try s.forward(tokens, logitsFor: Array(0..<tokens.count))
            let want = try Session(model: try LlamaModel(path: merged), context: 64, threads: 2).forward(tokens, logitsFor: Array(0..<tokens.count))
            let scale = want.map(abs).max()!
            let err = zip(got, want).map { abs($0 - $1) }.max()! / scale
            XCTAssertLessThan(err, 1e-5, "\(adapter): run-time LoRA vs merged, max |Δ| / max |logit| = \(err)")
            let s2 = try Session(model: m, context: 64, threads: 2)
            s2.adapter = try LoRAAdapter(path: a, model: m, scale: 0)
            let none = try s2.forward(tokens, logitsFor: [0])
            let base0 = try Session(model: m, context: 64, threads: 2).forward(tokens, logitsFor: [0])
            if extra.isEmpty && adapter != "embedding" { XCTAssertEqual(none, base0, "\(adapter): --lora-scale 0 is the base") }
        }
        // An adapter for another model is refused.
        let a = Fixture.scratch() + "/plain.skm"
        _ = try skconv(["adapter", "--base", Fixture.base("llama-f32"), "--adapter", Fixture.adapter("plain"), "--output", a])
        XCTAssertThrowsError(try LoRAAdapter(path: a, model: try LlamaModel(path: try Executable.realModelSKM("int8"))))
    }

    /// Per-request LoRA (llama-server's `lora` field): on one engine with an adapter loaded, scale 0
    /// generates what the base model does, the loaded scale what the merged model does, another
    /// scale what the adapter made at that scale does; a session switching adapter recomputes its
    /// prompt instead of reusing keys computed with other weights.
    func testPerRequestLoRA() throws {
        let a = Fixture.scratch() + "/plain.skm"
        let r = try skconv(["adapter", "--base", Fixture.base("llama-f32"), "--adapter", Fixture.adapter("plain"), "--output", a, "--matrix-type", "f32"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let plain = try tinySKM("llama-f32", "f32")
        let merged = try tinySKM("llama-f32", "f32", adapter: ["--adapter", Fixture.adapter("plain")])
        let engine = try Engine(modelPath: plain, threads: 2, lora: a)
        var p = GenerationParameters(maxTokens: 10, temperature: 0, ignoreEOS: true)
        let input = GenerationInput.tokens([1, 17, 42, 99, 5, 64, 3])
        func run(_ e: Engine, _ p: GenerationParameters) throws -> [Int] { try e.makeSession(context: 64).generate(input, p).tokens }
        let base = try run(try Engine(modelPath: plain, threads: 2), p)
        let withLoRA = try run(try Engine(modelPath: merged, threads: 2), p)
        XCTAssertNotEqual(base, withLoRA, "the adapter changes the greedy tokens (the test can fail)")
        XCTAssertEqual(try run(engine, p), withLoRA, "as loaded")
        p.loraScale = 0
        XCTAssertEqual(try run(engine, p), base, "scale 0")
        p.loraScale = 1
        XCTAssertEqual(try run(engine, p), withLoRA, "the loaded scale")
        p.loraScale = 0.5
        let half = try run(try Engine(modelPath: plain, threads: 2, lora: a, loraScale: 0.5), GenerationParameters(maxTokens: 10, temperature: 0, ignoreEOS: true))
        XCTAssertEqual(try run(engine, p), half, "another scale")
        // One session, adapter switched between requests: no reuse of the other weights' keys.
        let s = try engine.makeSession(context: 64)
        var q = GenerationParameters(maxTokens: 10, temperature: 0, ignoreEOS: true)
        q.loraScale = 0
        XCTAssertEqual(try s.generate(input, q).tokens, base)
        q.loraScale = nil
        let again = try s.generate(input, q)
        XCTAssertEqual(again.tokens, withLoRA)
        XCTAssertEqual(again.reusedTokens, 0)
        XCTAssertGreaterThan(try s.generate(input, q).reusedTokens, 0, "same adapter: the prompt is reused")
        // No adapter loaded: refused.
        q.loraScale = 1
        XCTAssertThrowsError(try run(try Engine(modelPath: plain, threads: 2), q)) { XCTAssertTrue("\($0)".contains("no LoRA adapter is loaded"), "\($0)") }
        // The request field.
        func parse(_ json: String) throws -> GenerationParameters {
            try CompletionRequest(body: Data(json.utf8), kind: .completion, defaultMaxTokens: 8).parameters
        }
        XCTAssertNil(try parse(#"{"prompt": "hi"}"#).loraScale)
        XCTAssertEqual(try parse(#"{"prompt": "hi", "lora": []}"#).loraScale, 0)
        XCTAssertEqual(try parse(#"{"prompt": "hi", "lora": [{"id": 0, "scale": 0.25}]}"#).loraScale, 0.25)
        for bad in [#"{"id": 1, "scale": 1}"#, #"{"id": 0}"#, #"{"id": 0, "scale": 1e9}"#] {
            XCTAssertThrowsError(try parse(#"{"prompt": "hi", "lora": ["# + bad + "]}"), bad)
        }
    }

    /// KL divergence of a model from itself is 0 with full top-1 agreement; int8 from f32 is small.
    func testKLDivergence() throws {
        guard try RealModel.available() else { throw XCTSkip("real SmolLM2 not built") }
        let f32 = try Executable.realModelSKM("f32"), int8 = try Executable.realModelSKM("int8")
        func run(_ m: String) throws -> [String: Any] {
            let r = try Executable.run("skrun", ["perplexity", m, "-f", Fixture.root + "/Fixtures/gpl-3.0.txt", "--chunks", "2", "--json", "--kl-base", f32])
            XCTAssertEqual(r.status, 0, r.stderr)
            return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        }
        let same = try run(f32)
        XCTAssertEqual(same["kl_mean"] as! Double, 0, accuracy: 1e-9)
        XCTAssertEqual(same["top1_agreement"] as? Double, 1)
        let q = try run(int8)
        XCTAssertGreaterThan(q["kl_mean"] as! Double, 0)
        XCTAssertLessThan(q["kl_mean"] as! Double, 0.02)
        XCTAssertEqual(q["base_ppl"] as! Double, same["ppl"] as! Double, accuracy: 1e-9)
    }

    /// --precise-prompts: prompt chunks of int8 weights with f32 activations give what the same
    /// weights dequantized to f32 give (the integer GEMM quantizes activations to int8).
    func testPrecisePromptsKeepActivationsInF32() throws {
        let tokens = (0..<40).map { ($0 * 37 + 11) % 128 }
        let int8 = try tinySKM("llama-f32", "int8")
        let m = try LlamaModel(path: int8)
        // the int8 weights, dequantized, as an f32 file
        let f = try SKMFile(path: int8)
        let dq = Fixture.scratch() + "/dq.skm"
        let w = try SKMWriter(path: dq, metadata: f.metadataKeys.map { ($0, f.metadata[$0]!) },
                              tensors: f.tensors.map { SKMTensorInfo(name: $0.name, type: .f32, group: 0, shape: $0.shape) })
        for t in f.tensors {
            let v = try f.withRawBytes(t) { Dequantize.tensor($0, type: t.type, group: t.group, rows: t.rows, cols: t.cols) }
            _ = try v.withUnsafeBytes { try w.write(name: t.name, raw: $0) }
        }
        try w.finish()
        let want = try Session(model: try LlamaModel(path: dq), context: 64, threads: 2).forward(tokens, logitsFor: Array(20..<40))
        let s = try Session(model: m, context: 64, threads: 2)
        s.preciseActivations = true
        let precise = try s.forward(tokens, logitsFor: Array(20..<40))
        let quantized = try Session(model: m, context: 64, threads: 2).forward(tokens, logitsFor: Array(20..<40))
        let scale = want.map(abs).max()!
        let ep = zip(precise, want).map { abs($0 - $1) }.max()! / scale
        let eq = zip(quantized, want).map { abs($0 - $1) }.max()! / scale
        XCTAssertLessThan(ep, 2e-5, "precise prompts vs dequantized f32")
        XCTAssertLessThanOrEqual(ep, eq)
    }

    /// skconv quantize reports how much of a merged fine-tune survives: part of the generated
    /// adapter on the real model's Q4_1 grid at int4 (a warning below half), nearly all at int8.
    func testFineTuneDeltaKept() throws {
        guard try RealModel.available() else { throw XCTSkip("real SmolLM2 not built") }
        let out = Fixture.scratch() + "/m.skm"
        let r = try skconv(["quantize", "--model", RealModel.checkpoint, "--adapter", RealModel.adapter, "--type", "int4", "--output", out, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let kept = j["fine_tune_delta_kept"] as! Double
        XCTAssertGreaterThan(kept, 0)
        XCTAssertLessThan(kept, 0.9)     // the Q4_1 grid snaps much of a small delta back
        XCTAssertEqual(r.stderr.contains("survives int4 quantization"), kept < 0.5, r.stderr)
        let e = try skconv(["quantize", "--model", RealModel.checkpoint, "--adapter", RealModel.adapter, "--type", "int8", "--output", out + "8", "--json"])
        let k8 = (try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as! [String: Any])["fine_tune_delta_kept"] as! Double
        XCTAssertGreaterThan(k8, max(kept, 0.9))
    }
}
