import Foundation
import SKTestSupport
import XCTest
import SKCore
import SKMerge
import SKSafetensors

/// `RowMerge`: a merged tensor produced by blocks of rows must equal `mergedTensor`'s whole
/// tensor (the path the PEFT goldens pin), across block boundaries, for every base dtype and
/// adapter kind it accepts; the kinds it cannot stream are left to `mergedTensor`.
final class RowMergeTests: XCTestCase {
    func plan(base: String, adapters: [String], trainable: String? = nil) throws -> MergePlan {
        try MergePlan(job: MergeJob(baseDirectory: Fixture.base(base), adapterDirectories: try adapters.map(Self.adapter),
                                    trainableParamsPath: trainable, outputDirectory: Fixture.scratch() + "/unused"))
    }

    /// A fixture adapter by name; "embedding-lora" is `Fixture.embeddingLoraOnly()`.
    static func adapter(_ name: String) throws -> String {
        name == "embedding-lora" ? try Fixture.embeddingLoraOnly() : Fixture.adapter(name)
    }

    func testBlocksEqualTheWholeMergedTensor() throws {
        for (base, adapters) in [("llama-f32", ["plain"]), ("llama-f32", ["embedding-lora"]), ("llama-f32", ["rslora"]),
                                 ("llama-f32", ["plain", "second"]), ("llama-bf16", ["plain"]), ("llama-f16", ["embedding-lora", "second"]),
                                 ("llama-sharded", ["plain"]), ("llama-f32", [])] {
            let p = try plan(base: base, adapters: adapters)
            var streamed = 0, merged = 0
            for name in p.tensorNames {
                guard let rm = try p.rowMerge(name) else { continue }
                streamed += 1
                if rm.loraModules > 0 { merged += 1 }
                var outcome = MergePlan.TensorOutcome()
                let want = try p.mergedTensor(name, outcome: &outcome)
                XCTAssertEqual(rm.loraModules, outcome.loraModulesMerged, name)
                let baseWant = try p.base.loadF32(name)
                var got: [Float] = [], gotBase: [Float] = [], blocks = 0
                try rm.forEachBlock(chunkElements: 3 * rm.cols + 1, wantBase: true) { chunk, b, r0 in
                    XCTAssertEqual(r0 * rm.cols, got.count, name)
                    XCTAssertEqual(chunk.count % rm.cols, 0, name)
                    got += chunk
                    if rm.loraModules > 0 { gotBase += b! } else { XCTAssertNil(b, name) }
                    blocks += 1
                }
                XCTAssertGreaterThan(blocks, 1, "\(name) should cross block boundaries")
                XCTAssertEqual(want.shape, [rm.rows, rm.cols], name)
                XCTAssertEqual(got.count, want.count, name)
                let scale = max(want.data.map(abs).max() ?? 1, 1e-6)
                var worst: Float = 0
                for i in 0..<min(got.count, want.count) { worst = max(worst, abs(got[i] - want.data[i])) }
                XCTAssertLessThanOrEqual(worst / scale, 1e-6, "\(base) + \(adapters): \(name) by rows differs by \(worst)")
                if rm.loraModules > 0 { XCTAssertEqual(gotBase, baseWant.data, name) }
            }
            XCTAssertGreaterThan(streamed, 10, "\(base) + \(adapters)")
            XCTAssertEqual(merged > 0, !adapters.isEmpty, "\(base) + \(adapters)")
            if adapters.contains("embedding-lora") {
                XCTAssertEqual(try p.rowMerge("model.embed_tokens.weight")?.loraModules, 1, "the embedding is streamed")
            }
        }
    }

    /// DoRA (row norms of the merged matrix), saved whole tensors and vocabulary growth go through
    /// `mergedTensor`.
    func testWholeTensorCasesAreNotStreamed() throws {
        let dora = try plan(base: "llama-f32", adapters: ["dora"])
        XCTAssertNil(try plan(base: "llama-f32", adapters: ["embedding"]).rowMerge("model.embed_tokens.weight"), "saved base_layer: a replacement")
        XCTAssertNil(try dora.rowMerge("model.layers.0.self_attn.q_proj.weight"))
        XCTAssertNil(try dora.rowMerge("model.layers.0.mlp.down_proj.weight"))
        XCTAssertEqual(try dora.rowMerge("model.layers.0.mlp.up_proj.weight")?.loraModules, 0)
        let saved = try plan(base: "llama-f32", adapters: ["modules-to-save"])
        let replaced = saved.tensorNames.filter { try! saved.rowMerge($0) == nil && saved.base.info($0)!.shape.count == 2 }
        XCTAssertFalse(replaced.isEmpty)
        let long = try plan(base: "llama-f32", adapters: ["longlora"], trainable: Fixture.tiny + "/longlora-trainable_params.bin")
        XCTAssertNil(try long.rowMerge("model.embed_tokens.weight"))
        XCTAssertNil(try long.rowMerge("model.layers.0.input_layernorm.weight"))
    }

    /// A NaN in a base matrix is refused by name, streamed or not.
    func testNonFiniteBaseRefused() throws {
        let dir = Fixture.scratch() + "/nan-base"
        try FileManager.default.copyItem(atPath: Fixture.base("llama-f32"), toPath: dir)
        let src = try SafetensorsFile(path: dir + "/model.safetensors")
        let name = "model.layers.1.mlp.up_proj.weight"
        var entries: [SafetensorsWriter.Entry] = [], tensors: [String: Tensor] = [:]
        for n in src.tensorNames {
            var t = try src.loadF32(n)
            if n == name { t.data[77] = .infinity }
            tensors[n] = t
            entries.append(.init(name: n, dtype: .F32, shape: t.shape))
        }
        let w = try SafetensorsWriter(path: dir + "/model.tmp", entries: entries, metadata: ["format": "pt"])
        for e in w.order { try w.write(name: e.name, tensor: tensors[e.name]!) }
        try w.finish()
        try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
        try FileManager.default.moveItem(atPath: dir + "/model.tmp", toPath: dir + "/model.safetensors")
        for adapters in [[String](), ["plain"]] {
            let job = MergeJob(baseDirectory: dir, adapterDirectories: adapters.map(Fixture.adapter), outputDirectory: Fixture.scratch() + "/out")
            XCTAssertThrowsError(try Merger(job: job).run()) { e in
                let s = e as? SinkKitError
                XCTAssertEqual(s?.kind, .nonFinite)
                XCTAssertTrue(s?.message.contains(name) ?? false, "\(String(describing: s))")
                XCTAssertTrue(s?.message.contains("element 77") ?? false, "\(String(describing: s))")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: Fixture.scratch() + "/out"))
        }
    }
}
