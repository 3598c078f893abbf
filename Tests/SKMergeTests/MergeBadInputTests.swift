import Foundation
import SKTestSupport
import XCTest
import SKCore
import SKMerge
import SKSafetensors

/// Every refusal of the merge: a specific error, and nothing left at (or beside) the output.
final class MergeBadInputTests: XCTestCase {
    let fm = FileManager.default

    /// Runs a merge expected to fail; checks the error kind/text and that no output or
    /// temporary directory was left behind.
    func assertRefused(_ job: MergeJob, _ kind: SinkKitError.Kind, _ text: String, file: StaticString = #filePath, line: UInt = #line) {
        let parent = URL(fileURLWithPath: job.outputDirectory).deletingLastPathComponent().path
        let before = Set((try? fm.contentsOfDirectory(atPath: parent)) ?? [])
        XCTAssertThrowsError(try Merger(job: job).run(), file: file, line: line) { e in
            guard let e = e as? SinkKitError else { return XCTFail("\(e)", file: file, line: line) }
            XCTAssertEqual(e.kind, kind, e.message, file: file, line: line)
            XCTAssertTrue(e.message.contains(text), "\"\(e.message)\" lacks \"\(text)\"", file: file, line: line)
        }
        let after = Set((try? fm.contentsOfDirectory(atPath: parent)) ?? [])
        XCTAssertEqual(after, before, "merge left files behind: \(after.subtracting(before))", file: file, line: line)
    }

    func job(base: String = Fixture.base("llama-f32"), adapters: [String], trainable: String? = nil, context: Int? = nil) -> MergeJob {
        MergeJob(baseDirectory: base, adapterDirectories: adapters, trainableParamsPath: trainable, context: context,
                 outputDirectory: Fixture.scratch() + "/out")
    }

    /// A copy of a fixture directory to modify.
    func copy(_ path: String) throws -> String {
        let d = Fixture.scratch() + "/" + URL(fileURLWithPath: path).lastPathComponent
        try fm.copyItem(atPath: path, toPath: d)
        return d
    }

    func editJSON(_ path: String, _ edit: (inout [String: Any]) -> Void) throws {
        var j = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        edit(&j)
        try JSONSerialization.data(withJSONObject: j).write(to: URL(fileURLWithPath: path))
    }

    /// Rewrites an adapter's safetensors with one tensor replaced or renamed.
    func rewriteAdapter(_ dir: String, _ change: (String, Tensor) -> (String, Tensor)?) throws {
        let path = dir + "/adapter_model.safetensors"
        let src = try SafetensorsFile(path: path)
        var tensors: [(String, Tensor)] = []
        for n in src.tensorNames { if let c = change(n, try src.loadF32(n)) { tensors.append(c) } }
        let tmp = path + ".new"
        let w = try SafetensorsWriter(path: tmp, entries: tensors.map { .init(name: $0.0, dtype: .F32, shape: $0.1.shape) }, metadata: ["format": "pt"])
        let byName = Dictionary(uniqueKeysWithValues: tensors)
        for e in w.order { try w.write(name: e.name, tensor: byName[e.name]!) }
        try w.finish()
        try fm.removeItem(atPath: path)
        try fm.moveItem(atPath: tmp, toPath: path)
    }

    func testTensorShapeDisagreesWithConfig() throws {
        let base = try copy(Fixture.base("llama-f32"))
        try editJSON(base + "/config.json") { $0["intermediate_size"] = 48 }
        assertRefused(job(base: base, adapters: [Fixture.adapter("plain")]), .shapeMismatch, "model.layers.0.mlp.down_proj.weight has shape [32, 64], config")
    }

    func testMissingConfigField() throws {
        let base = try copy(Fixture.base("llama-f32"))
        try editJSON(base + "/config.json") { $0["num_hidden_layers"] = nil }
        assertRefused(job(base: base, adapters: [Fixture.adapter("plain")]), .config, "missing required field num_hidden_layers")
    }

    func testConfigFieldOfWrongType() throws {
        let base = try copy(Fixture.base("llama-f32"))
        try editJSON(base + "/config.json") { $0["hidden_size"] = "32" }
        assertRefused(job(base: base, adapters: [Fixture.adapter("plain")]), .config, "hidden_size")
    }

    func testNonLlamaConfig() throws {
        let base = try copy(Fixture.base("llama-f32"))
        try editJSON(base + "/config.json") { $0["model_type"] = "gpt2" }
        assertRefused(job(base: base, adapters: [Fixture.adapter("plain")]), .config, "not a LLaMA-family model")
    }

    func testMissingBaseTensor() throws {
        let base = try copy(Fixture.base("llama-tied-f32"))
        try editJSON(base + "/config.json") { $0["tie_word_embeddings"] = false }
        assertRefused(job(base: base, adapters: [Fixture.adapter("plain")]), .shapeMismatch, "lm_head.weight is missing")
    }

    func testAdapterForAnotherModelShape() throws {
        let a = try copy(Fixture.adapter("plain"))
        try rewriteAdapter(a) { n, t in
            n.hasSuffix("layers.0.self_attn.q_proj.lora_A.weight") ? (n, Tensor(zeros: [4, 48])) : (n, t)
        }
        assertRefused(job(adapters: [a]), .shapeMismatch, "model.layers.0.self_attn.q_proj lora_A [4, 48]")
    }

    func testAdapterModuleMissingFromBase() throws {
        let a = try copy(Fixture.adapter("plain"))
        try rewriteAdapter(a) { n, t in (n.replacingOccurrences(of: "layers.1.", with: "layers.7."), t) }
        assertRefused(job(adapters: [a]), .adapter, "model.layers.7.self_attn")
    }

    func testTargetedModuleWithoutWeights() throws {
        let a = try copy(Fixture.adapter("plain"))
        try rewriteAdapter(a) { n, t in n.contains("layers.1.self_attn.k_proj") ? nil : (n, t) }
        assertRefused(job(adapters: [a]), .adapter, "selects model.layers.1.self_attn.k_proj but the adapter has no LoRA weights")
    }

    func testRankMismatchWithRankPattern() throws {
        let a = try copy(Fixture.adapter("patterns"))
        try editJSON(a + "/adapter_config.json") { $0["rank_pattern"] = [:] as [String: Int] }
        assertRefused(job(adapters: [a]), .shapeMismatch, "with r=4")
    }

    func testLayerReplicationRefused() {
        assertRefused(job(adapters: [Fixture.adapter("layer-replication")]), .refused, "layer_replication")
    }

    func testNonLoraPeftTypeRefused() throws {
        let a = try copy(Fixture.adapter("plain"))
        try editJSON(a + "/adapter_config.json") { $0["peft_type"] = "IA3" }
        assertRefused(job(adapters: [a]), .refused, "peft_type IA3")
    }

    func testMissingAdapterWeights() throws {
        let a = try copy(Fixture.adapter("plain"))
        try fm.removeItem(atPath: a + "/adapter_model.safetensors")
        assertRefused(job(adapters: [a]), .io, "no adapter_model.safetensors or adapter_model.bin")
    }

    func testPickleWithForeignGlobalRefused() {
        assertRefused(job(adapters: [], trainable: Fixture.tiny + "/bad/evil.bin"), .pickle, "posix.system")
    }

    func testTrainableParamForUnknownTensor() throws {
        let p = Fixture.scratch() + "/tp.safetensors"
        let w = try SafetensorsWriter(path: p, entries: [.init(name: "model.vision_tower.weight", dtype: .F32, shape: [2])], metadata: [:])
        try w.write(name: "model.vision_tower.weight", tensor: Tensor(shape: [2], data: [1, 2]))
        try w.finish()
        assertRefused(job(adapters: [], trainable: p), .adapter, "model.vision_tower.weight")
    }

    func testNaNResultRefusedWithTensorName() throws {
        let p = Fixture.scratch() + "/tp.safetensors"
        var norm = [Float](repeating: 1, count: 32)
        norm[3] = .nan
        let w = try SafetensorsWriter(path: p, entries: [.init(name: "model.layers.1.input_layernorm.weight", dtype: .F32, shape: [32])], metadata: [:])
        try w.write(name: "model.layers.1.input_layernorm.weight", tensor: Tensor(shape: [32], data: norm))
        try w.finish()
        assertRefused(job(adapters: [], trainable: p), .nonFinite, "model.layers.1.input_layernorm.weight")
    }

    func testExistingOutputNeedsForce() throws {
        var j = job(adapters: [Fixture.adapter("plain")])
        _ = try Merger(job: j).run()
        assertRefused(j, .outputExists, "--force")
        j.force = true
        _ = try Merger(job: j).run()
        XCTAssertTrue(fm.fileExists(atPath: j.outputDirectory + "/model.safetensors"))
    }

    /// --force replaces only a directory a previous merge wrote: a user's directory survives it.
    func testForceNeverReplacesAForeignDirectory() throws {
        var j = job(adapters: [Fixture.adapter("plain")])
        try fm.createDirectory(atPath: j.outputDirectory, withIntermediateDirectories: true)
        fm.createFile(atPath: j.outputDirectory + "/keep", contents: Data("x".utf8))
        j.force = true
        assertRefused(j, .invalidArgument, "not a directory that skconv wrote")
        XCTAssertTrue(fm.fileExists(atPath: j.outputDirectory + "/keep"))
    }

    func testOutputMayNotBeAnInput() throws {
        let base = try copy(Fixture.base("llama-f32"))
        var j = job(base: base, adapters: [Fixture.adapter("plain")])
        j.outputDirectory = base
        j.force = true
        XCTAssertThrowsError(try Merger(job: j).run()) { XCTAssertEqual(($0 as! SinkKitError).kind, .invalidArgument) }
        XCTAssertTrue(fm.fileExists(atPath: base + "/model.safetensors"))
    }

    func testContextOnTopOfOtherScalingRefused() throws {
        let base = try copy(Fixture.base("llama-f32"))
        try editJSON(base + "/config.json") {
            $0["rope_parameters"] = ["rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 32, "rope_theta": 10000.0]
        }
        assertRefused(job(base: base, adapters: [], context: 1000), .refused, "llama3")
    }

    func testInputsAreNeverModified() throws {
        let paths = [Fixture.base("llama-f32") + "/model.safetensors", Fixture.base("llama-f32") + "/config.json",
                     Fixture.adapter("longlora") + "/adapter_model.safetensors", Fixture.tiny + "/longlora-trainable_params.bin"]
        let before = try paths.map { try SHA256.hexDigest(ofFile: $0) }
        _ = try Merger(job: job(adapters: [Fixture.adapter("longlora")], trainable: Fixture.tiny + "/longlora-trainable_params.bin", context: 300)).run()
        XCTAssertEqual(try paths.map { try SHA256.hexDigest(ofFile: $0) }, before)
    }
}
