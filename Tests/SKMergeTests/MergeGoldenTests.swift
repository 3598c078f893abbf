import Foundation
import SKTestSupport
import XCTest
import SKCore
import SKMerge
import SKSafetensors

/// Every fixture adapter merged by SinkKit must match PEFT's merge_and_unload() (run by
/// Fixtures/generate_fixtures.py) to f32 rounding.
final class MergeGoldenTests: XCTestCase {
    func merge(base: String, adapters: [String], trainable: String? = nil, dtype: DType? = nil) throws -> (String, MergeReport) {
        let out = Fixture.scratch() + "/merged"
        let job = MergeJob(baseDirectory: Fixture.base(base), adapterDirectories: adapters.map(Fixture.adapter),
                           trainableParamsPath: trainable, dtype: dtype, outputDirectory: out)
        let report = try Merger(job: job).run()
        return (out, report)
    }

    /// Compares every expected tensor; tolerance is relative to the tensor's largest value.
    func assertMatches(_ dir: String, expected: String, relTol: Float = 2e-6, file: StaticString = #filePath, line: UInt = #line) throws {
        let got = try SafetensorsFile(path: dir + "/model.safetensors")
        let want = try SafetensorsFile(path: Fixture.expected(expected))
        XCTAssertEqual(Set(got.tensorNames), Set(want.tensorNames), "tensor names differ", file: file, line: line)
        for name in want.tensorNames {
            let a = try got.loadF32(name), b = try want.loadF32(name)
            XCTAssertEqual(a.shape, b.shape, name, file: file, line: line)
            guard a.shape == b.shape else { continue }
            let scale = max(b.data.map(abs).max() ?? 1, 1e-6)
            var worst: Float = 0
            for i in 0..<a.count { worst = max(worst, abs(a.data[i] - b.data[i])) }
            XCTAssertLessThanOrEqual(worst / scale, relTol, "\(expected): \(name) differs from PEFT by \(worst)", file: file, line: line)
        }
    }

    func testPlainLoRA() throws {
        let (d, r) = try merge(base: "llama-f32", adapters: ["plain"])
        XCTAssertEqual(r.loraModulesMerged, 8)
        try assertMatches(d, expected: "plain")
    }
    func testRsLoRA() throws { try assertMatches(try merge(base: "llama-f32", adapters: ["rslora"]).0, expected: "rslora") }
    func testRankAndAlphaPatterns() throws { try assertMatches(try merge(base: "llama-f32", adapters: ["patterns"]).0, expected: "patterns") }
    func testDoRA() throws { try assertMatches(try merge(base: "llama-f32", adapters: ["dora"]).0, expected: "dora") }
    func testEmbeddingLoRA() throws { try assertMatches(try merge(base: "llama-f32", adapters: ["embedding"]).0, expected: "embedding") }
    func testModulesToSave() throws {
        let (d, r) = try merge(base: "llama-f32", adapters: ["modules-to-save"])
        XCTAssertEqual(r.tensorsReplaced, 1)
        try assertMatches(d, expected: "modules-to-save")
    }
    func testRegexTargetModules() throws { try assertMatches(try merge(base: "llama-f32", adapters: ["regex"]).0, expected: "regex") }
    func testOldStyleAdapterBin() throws { try assertMatches(try merge(base: "llama-f32", adapters: ["bin"]).0, expected: "bin") }
    func testLayersToTransform() throws { try assertMatches(try merge(base: "llama-f32", adapters: ["layers"]).0, expected: "layers") }
    func testLoraBias() throws { try assertMatches(try merge(base: "llama-bias-f32", adapters: ["lora-bias"]).0, expected: "lora-bias") }
    func testTiedEmbeddings() throws { try assertMatches(try merge(base: "llama-tied-f32", adapters: ["tied"]).0, expected: "tied") }
    func testShardedBase() throws { try assertMatches(try merge(base: "llama-sharded", adapters: ["plain"]).0, expected: "plain") }
    /// Qwen2 (q/k/v biases): a LoRA on every linear module (Fixtures/generate_families.py).
    func testQwen2LoRA() throws {
        let (d, r) = try merge(base: "qwen2-f32", adapters: ["qwen2-lora"])
        XCTAssertEqual(r.loraModulesMerged, 14)
        try assertMatches(d, expected: "qwen2-lora")
    }
    /// Qwen3 (per-head q/k norms carried over untouched).
    func testQwen3LoRA() throws {
        let (d, r) = try merge(base: "qwen3-f32", adapters: ["qwen3-lora"])
        XCTAssertEqual(r.loraModulesMerged, 14)
        try assertMatches(d, expected: "qwen3-lora")
    }
    /// Phi-3: PEFT's LoRA on the fused qkv_proj and gate_up_proj, merged on the fused tensors (the
    /// output stays a Phi-3 checkpoint transformers loads).
    func testPhi3LoRA() throws {
        let (d, r) = try merge(base: "phi3-f32", adapters: ["phi3-lora"])
        XCTAssertEqual(r.loraModulesMerged, 8)
        try assertMatches(d, expected: "phi3-lora")
    }
    /// Mistral and Llama 3 (tied embeddings): the Llama module names, on those checkpoints.
    func testMistralAndLlama3LoRA() throws {
        for name in ["mistral", "llama3"] {
            let (d, r) = try merge(base: "\(name)-f32", adapters: ["\(name)-lora"])
            XCTAssertEqual(r.loraModulesMerged, 14, name)
            try assertMatches(d, expected: "\(name)-lora")
        }
    }
    func testGemma2LoRA() throws {
        let (d, r) = try merge(base: "gemma2-f32", adapters: ["gemma2-lora"])
        XCTAssertEqual(r.loraModulesMerged, 14)
        try assertMatches(d, expected: "gemma2-lora")
    }
    func testTwoAdaptersInOrder() throws {
        try assertMatches(try merge(base: "llama-f32", adapters: ["plain", "second"]).0, expected: "plain+second")
    }

    func testFanInFanOutIgnoredWithWarning() throws {
        let (d, r) = try merge(base: "llama-f32", adapters: ["fan-in-fan-out"])
        XCTAssertTrue(r.warnings.contains { $0.contains("fan_in_fan_out") })
        try assertMatches(d, expected: "fan-in-fan-out")
    }

    func testLongLoRATrainableParamsAndVocabGrowth() throws {
        let (d, r) = try merge(base: "llama-f32", adapters: ["longlora"], trainable: Fixture.tiny + "/longlora-trainable_params.bin")
        XCTAssertEqual(r.previousVocabSize, 128)
        XCTAssertEqual(r.vocabSize, 129)
        try assertMatches(d, expected: "longlora")
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d + "/config.json"))) as! [String: Any]
        XCTAssertEqual(cfg["vocab_size"] as? Int, 129)
        // The adapter ships its tokenizer files: they win over the base's.
        let tok = try String(contentsOfFile: d + "/tokenizer_config.json", encoding: .utf8)
        XCTAssertTrue(tok.contains("[PAD]"))
    }

    /// F16 and BF16 bases: arithmetic in f32, one rounding to the storage type at the end.
    func testHalfPrecisionBasesRoundOnce() throws {
        for (base, dtype, ulp) in [("llama-f16", DType.F16, Float(1.0 / 1024)), ("llama-bf16", DType.BF16, Float(1.0 / 128))] {
            let (d, _) = try merge(base: base, adapters: ["plain"])
            let got = try SafetensorsFile(path: d + "/model.safetensors")
            XCTAssertEqual(got.info("model.layers.0.self_attn.q_proj.weight")?.dtype, dtype)
            // Expected: PEFT's f32 merge of the same adapter on the same (rounded) base.
            let baseF = try SafetensorsFile(path: Fixture.base(base) + "/model.safetensors")
            let plainF32 = try SafetensorsFile(path: Fixture.expected("plain"))
            let f32Base = try SafetensorsFile(path: Fixture.base("llama-f32") + "/model.safetensors")
            let name = "model.layers.1.self_attn.v_proj.weight"
            let delta = zip(try plainF32.loadF32(name).data, try f32Base.loadF32(name).data).map { $0 - $1 }
            let want = zip(try baseF.loadF32(name).data, delta).map { $0 + $1 }
            let have = try got.loadF32(name).data
            for i in 0..<want.count {
                XCTAssertLessThanOrEqual(abs(have[i] - want[i]), ulp * max(abs(want[i]), 1e-3) + 1e-6, "\(base) \(name)[\(i)]")
            }
        }
    }

    func testDtypeConversionAndConfig() throws {
        let (d, _) = try merge(base: "llama-f32", adapters: ["plain"], dtype: .BF16)
        let got = try SafetensorsFile(path: d + "/model.safetensors")
        XCTAssertTrue(got.tensors.allSatisfy { $0.dtype == .BF16 })
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d + "/config.json"))) as! [String: Any]
        XCTAssertEqual(cfg["dtype"] as? String, "bfloat16")
    }

    func testProvenanceMetadata() throws {
        let (d, _) = try merge(base: "llama-f32", adapters: ["rslora"])
        let f = try SafetensorsFile(path: d + "/model.safetensors")
        XCTAssertEqual(f.metadata["format"], "pt")
        let p = try JSONSerialization.jsonObject(with: Data(f.metadata["sinkkit"]!.utf8)) as! [String: Any]
        let a = (p["adapters"] as! [[String: Any]])[0]
        XCTAssertEqual(a["r"] as? Int, 4)
        XCTAssertEqual(a["use_rslora"] as? Bool, true)
        XCTAssertEqual(a["sha256"] as? String, try SHA256.hexDigest(ofFile: Fixture.adapter("rslora") + "/adapter_model.safetensors"))
    }

    func testContextWritesLinearRopeScaling() throws {
        let out = Fixture.scratch() + "/ctx"
        let r = try Merger(job: MergeJob(baseDirectory: Fixture.base("llama-f32"), adapterDirectories: [], context: 200, outputDirectory: out)).run()
        XCTAssertEqual(r.ropeScalingWritten, 4) // ceil(200 / 64)
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))) as! [String: Any]
        let rp = cfg["rope_parameters"] as! [String: Any]
        XCTAssertEqual(rp["rope_type"] as? String, "linear")
        XCTAssertEqual(rp["factor"] as? Double, 4)
        XCTAssertEqual(cfg["max_position_embeddings"] as? Int, 64)

        let out2 = Fixture.scratch() + "/ctx2"
        let r2 = try Merger(job: MergeJob(baseDirectory: Fixture.base("llama-f32"), adapterDirectories: [], context: 64, outputDirectory: out2)).run()
        XCTAssertNil(r2.ropeScalingWritten)
        XCTAssertTrue(r2.warnings.contains { $0.contains("fits") })
    }
}
