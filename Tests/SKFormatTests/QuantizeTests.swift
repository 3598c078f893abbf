import Foundation
import SKTestSupport
import XCTest
@testable import SKConvert
import SKCore
import SKFormat
import SKMerge
import SKQuant
import SKSafetensors

/// `skconv quantize` on the tiny fixture model, and its refusals.
final class QuantizeTests: XCTestCase {
    func quantize(_ type: QuantType, model: String = Fixture.base("llama-f32"), group: Int? = nil, overrides: [String] = [],
                  adapters: [String] = [], compress: Bool = false, mixed: Bool = false) throws -> (SKMFile, QuantizeReport) {
        var job = QuantizeJob(modelDirectory: model, type: type, output: Fixture.scratch() + "/m.skm")
        job.mixed = mixed
        job.group = group
        job.tensorTypes = overrides
        job.adapterDirectories = adapters
        job.compressionLevel = compress ? 3 : nil
        let r = try SKMConverter(job: job).run()
        return (try SKMFile(path: job.output, verify: true), r)
    }

    func dequantized(_ f: SKMFile, _ name: String) throws -> [Float] {
        let t = f.info(name)!
        return try f.withRawBytes(t) { Dequantize.tensor($0, type: t.type, group: t.group, rows: t.rows, cols: t.cols) }
    }

    func testEveryTypeRoundTripsWithinItsError() throws {
        let base = try SafetensorsFile(path: Fixture.base("llama-f32") + "/model.safetensors")
        let name = "model.layers.1.mlp.down_proj.weight"
        let x = try base.loadF32(name).data
        let rms = (x.reduce(0.0) { (s: Double, v: Float) in s + Double(v) * Double(v) } / Double(x.count)).squareRoot()
        for (t, bound) in [(QuantType.f32, 0.0), (.f16, 1e-3), (.int8, 0.01), (.int4, 0.12), (.int4Sym, 0.14), (.int5Sym, 0.07)] {
            let (f, report) = try quantize(t)
            XCTAssertEqual(f.info(name)?.type, t)
            XCTAssertEqual(f.info("model.norm.weight")?.type, .f32, "1-D tensors stay f32")
            XCTAssertEqual(f.info("model.embed_tokens.weight")?.type, t.isQuantized ? .int8 : t, "embedding default")
            let y = try dequantized(f, name)
            var sse = 0.0
            for i in 0..<x.count { let r = Double(x[i]) - Double(y[i]); sse += r * r }
            let err = (sse / Double(x.count)).squareRoot()
            XCTAssertLessThanOrEqual(err / rms, bound, "\(t) relative RMSE")
            XCTAssertEqual(report.parameters, 26784)
        }
    }

    /// Unchanged F32 tensors are quantized in place from the checkpoint's mapping, in chunks of
    /// rows: the same bytes as quantizing the loaded tensor, and the chunks cover every row once
    /// (BF16 too, decoded chunk by chunk).
    func testInPlaceQuantizationMatchesLoadedTensors() throws {
        let base = try SafetensorsFile(path: Fixture.base("llama-f32") + "/model.safetensors")
        for type in [QuantType.int8, .int4, .int4Sym] {
            let (f, _) = try quantize(type)
            for t in f.tensors where t.type.isQuantized {
                let x = try base.loadF32(t.name)
                var want = [UInt8](repeating: 0, count: t.type.byteCount(rows: t.rows, cols: t.cols, group: t.group)!)
                try x.data.withUnsafeBufferPointer { src in
                    try want.withUnsafeMutableBytes { _ = try BlockQuantizer.quantize(src, rows: t.rows, cols: t.cols, type: t.type, group: t.group, into: $0) }
                }
                XCTAssertEqual(try f.withRawBytes(t) { Array($0) }, want, "\(type) \(t.name)")
            }
        }
        let name = "model.layers.0.mlp.up_proj.weight", x = try base.loadF32(name)
        var seen: [Float] = [], firsts: [Int] = []
        let done = try base.withF32Chunks(name, rowElements: x.cols, chunkElements: 3 * x.cols + 1) { chunk, first in
            XCTAssertEqual(first, seen.count)
            XCTAssertEqual(chunk.count % x.cols, 0)
            firsts.append(first)
            seen += chunk
        }
        XCTAssertTrue(done)
        XCTAssertEqual(seen, x.data)
        XCTAssertGreaterThan(firsts.count, 1)
        let bf = try SafetensorsFile(path: Fixture.base("llama-bf16") + "/model.safetensors"), y = try bf.loadF32(name)
        var seenBF: [Float] = []
        XCTAssertTrue(try bf.withF32Chunks(name, rowElements: y.cols, chunkElements: 2 * y.cols) { chunk, first in
            XCTAssertEqual(first, seenBF.count)
            seenBF += chunk
        })
        XCTAssertEqual(seenBF, y.data)
        XCTAssertFalse(try bf.withF32Chunks(name, rowElements: y.cols + 1) { _, _ in XCTFail("called") })
    }

    func testMetadataCarriesConfigTokenizerAndProvenance() throws {
        let (f, _) = try quantize(.int4)
        XCTAssertEqual(f.metadata["llama.hidden_size"], .int(32))
        XCTAssertEqual(f.metadata["llama.num_key_value_heads"], .int(2))
        XCTAssertEqual(f.metadata["llama.head_dim"], .int(8))
        XCTAssertEqual(f.metadata["llama.tie_word_embeddings"], .bool(false))
        XCTAssertEqual(f.metadata["llama.rope_scaling.type"], .string("none"))
        XCTAssertEqual(f.metadata["tokenizer.vocab"]?.stringArray?.count, 128)
        XCTAssertEqual(f.metadata["tokenizer.bos_token"], .string("<s>"))
        XCTAssertTrue(f.metadata["tokenizer.chat_template"]?.string?.contains("messages") ?? false)
        let recipe = try JSONSerialization.jsonObject(with: Data(f.metadata["provenance.recipe"]!.string!.utf8)) as! [String: Any]
        XCTAssertEqual(recipe["type"] as? String, "int4")
        let sources = try JSONSerialization.jsonObject(with: Data(f.metadata["provenance.sources"]!.string!.utf8)) as! [String: String]
        XCTAssertEqual(sources["model.safetensors"], try SHA256.hexDigest(ofFile: Fixture.base("llama-f32") + "/model.safetensors"))
    }

    /// `--type mixed`: int5-sym layers, int8 v_proj and output head, the untied embedding at
    /// int5-sym (group 64 where it divides the rows: the tiny model's 32 do not, so 32); a tied
    /// embedding is also the head, so int8; user overrides come first.
    func testMixedRecipe() throws {
        let (f, _) = try quantize(.int5Sym, mixed: true)
        XCTAssertEqual(f.info("model.layers.0.self_attn.v_proj.weight")?.type, .int8)
        XCTAssertEqual(f.info("model.layers.1.self_attn.q_proj.weight")?.type, .int5Sym)
        XCTAssertEqual(f.info("model.layers.1.mlp.down_proj.weight")?.type, .int5Sym)
        XCTAssertEqual(f.info("lm_head.weight")?.type, .int8)
        XCTAssertEqual(f.info("model.embed_tokens.weight")?.type, .int5Sym)
        XCTAssertEqual(f.info("model.embed_tokens.weight")?.group, 32)
        XCTAssertEqual(f.info("model.norm.weight")?.type, .f32)
        let recipe = try JSONSerialization.jsonObject(with: Data(f.metadata["provenance.recipe"]!.string!.utf8)) as! [String: Any]
        XCTAssertEqual(recipe["recipe"] as? String, "mixed")
        let (tied, _) = try quantize(.int5Sym, model: Fixture.base("llama-tied-f32"), mixed: true)
        XCTAssertEqual(tied.info("model.embed_tokens.weight")?.type, .int8)
        let (o, _) = try quantize(.int5Sym, overrides: ["v_proj=int4"], mixed: true)
        XCTAssertEqual(o.info("model.layers.0.self_attn.v_proj.weight")?.type, .int4, "a user override wins")
    }

    func testGroupAndOverrides() throws {
        let (f, _) = try quantize(.int4Sym, group: 32, overrides: ["down_proj=int4:64", "layers\\.0\\..*q_proj=f16", "embed_tokens=int4-sym"])
        XCTAssertEqual(f.info("model.layers.0.mlp.down_proj.weight")?.type, .int4)
        XCTAssertEqual(f.info("model.layers.0.mlp.down_proj.weight")?.group, 64)
        XCTAssertEqual(f.info("model.layers.0.self_attn.q_proj.weight")?.type, .f16)
        XCTAssertEqual(f.info("model.layers.1.self_attn.q_proj.weight")?.type, .int4Sym)
        XCTAssertEqual(f.info("model.embed_tokens.weight")?.type, .int4Sym)
    }

    /// Merged tensors (and BF16/F16 bases) are merged and quantized by blocks of rows: the bytes of
    /// quantizing `mergedTensor`'s whole tensor, and the same share of the fine-tune's change kept,
    /// computed here from the whole tensors.
    func testRowBlocksEqualWholeTensors() throws {
        let embedding = try Fixture.embeddingLoraOnly()
        for (base, adapters, type) in [("llama-bf16", [Fixture.adapter("plain"), embedding], QuantType.int4), ("llama-f32", [Fixture.adapter("plain")], .int8),
                                       ("llama-f16", [embedding, Fixture.adapter("second")], .int4Sym)] {
            var job = QuantizeJob(modelDirectory: Fixture.base(base), type: type, output: Fixture.scratch() + "/rows.skm")
            job.adapterDirectories = adapters
            job.rowBlockElements = 100   // a few rows per block: every tensor crosses block boundaries
            let r = try SKMConverter(job: job).run()
            let f = try SKMFile(path: job.output, verify: true)
            let plan = try MergePlan(job: job.mergeJob)
            var dot = [0.0, 0.0], norm = [0.0, 0.0], modules = 0
            for t in f.tensors where t.type.isQuantized {
                var outcome = MergePlan.TensorOutcome()
                let x = try plan.mergedTensor(t.name, outcome: &outcome)
                modules += outcome.loraModulesMerged
                func q(_ v: Tensor) throws -> [UInt8] {
                    var b = [UInt8](repeating: 0, count: t.type.byteCount(rows: t.rows, cols: t.cols, group: t.group)!)
                    try v.data.withUnsafeBufferPointer { src in
                        try b.withUnsafeMutableBytes { _ = try BlockQuantizer.quantize(src, rows: t.rows, cols: t.cols, type: t.type, group: t.group, into: $0) }
                    }
                    return b
                }
                let want = try q(x)
                XCTAssertEqual(try f.withRawBytes(t) { Array($0) }, want, "\(base) \(adapters) \(t.name)")
                guard outcome.loraModulesMerged > 0 else { continue }
                let b = try plan.base.loadF32(t.name), qb = try q(b)
                let dq = want.withUnsafeBytes { Dequantize.tensor($0, type: t.type, group: t.group, rows: t.rows, cols: t.cols) }
                let dqb = qb.withUnsafeBytes { Dequantize.tensor($0, type: t.type, group: t.group, rows: t.rows, cols: t.cols) }
                let k = t.name.contains(".layers.") ? 0 : 1
                for i in 0..<x.count {
                    let d = Double(x.data[i]) - Double(b.data[i])
                    dot[k] += (Double(dq[i]) - Double(dqb[i])) * d
                    norm[k] += d * d
                }
            }
            XCTAssertEqual(r.loraModulesMerged, modules, "\(base) \(adapters)")
            XCTAssertGreaterThan(modules, 0)
            XCTAssertEqual(norm[1] > 0, adapters.contains(embedding), "\(base) \(adapters): the embedding's delta")
            for k in 0..<2 {
                XCTAssertEqual(r.deltaKeptDot[k], dot[k], accuracy: 1e-9 * max(1, abs(dot[k])), "\(base) \(adapters) part \(k)")
                XCTAssertEqual(r.deltaNorm[k], norm[k], accuracy: 1e-9 * max(1, norm[k]), "\(base) \(adapters) part \(k)")
            }
        }
    }

    /// f32 and f16 outputs go by blocks of rows too: the bytes of encoding `mergedTensor`'s whole
    /// tensor, for every tensor, with the same merged-module count.
    func testFloatOutputsByRowBlocksEqualWholeTensors() throws {
        let embedding = try Fixture.embeddingLoraOnly()
        for (base, adapters, type) in [("llama-bf16", [Fixture.adapter("plain"), embedding], QuantType.f16), ("llama-f16", [Fixture.adapter("second")], .f32),
                                       ("llama-f32", [Fixture.adapter("plain")], .f16)] {
            var job = QuantizeJob(modelDirectory: Fixture.base(base), type: type, output: Fixture.scratch() + "/rows-float.skm")
            job.adapterDirectories = adapters
            job.rowBlockElements = 100
            let r = try SKMConverter(job: job).run()
            let f = try SKMFile(path: job.output, verify: true)
            let plan = try MergePlan(job: job.mergeJob)
            var modules = 0
            for t in f.tensors {
                var outcome = MergePlan.TensorOutcome()
                let x = try plan.mergedTensor(t.name, outcome: &outcome)
                modules += outcome.loraModulesMerged
                var want = [UInt8](repeating: 0, count: t.type == .f16 ? 2 * x.count : 4 * x.count)
                try want.withUnsafeMutableBytes { d in try x.data.withUnsafeBufferPointer { try ElementConversion.encode($0, dtype: t.type == .f16 ? .F16 : .F32, into: d.baseAddress!) } }
                XCTAssertEqual(try f.withRawBytes(t) { Array($0) }, want, "\(base) → \(type.userName): \(t.name)")
            }
            XCTAssertEqual(r.loraModulesMerged, modules, "\(base) \(adapters)")
            XCTAssertGreaterThan(modules, 0)
        }
    }

    /// Merging on the fly gives exactly the bytes of merging to disk first.
    func testAdaptersMergedOnTheFlyEqualMergeThenQuantize() throws {
        let (direct, r) = try quantize(.int4, adapters: [Fixture.adapter("plain")])
        XCTAssertEqual(r.loraModulesMerged, 8)
        let merged = Fixture.scratch() + "/merged"
        _ = try Merger(job: MergeJob(baseDirectory: Fixture.base("llama-f32"), adapterDirectories: [Fixture.adapter("plain")], outputDirectory: merged)).run()
        let (viaDisk, _) = try quantize(.int4, model: merged)
        for t in direct.tensors {
            let a = try direct.withRawBytes(t) { Array($0) }
            let b = try viaDisk.withRawBytes(viaDisk.info(t.name)!) { Array($0) }
            XCTAssertEqual(a, b, t.name)
        }
        XCTAssertTrue(direct.metadata["provenance.adapters"]!.string!.contains("\"r\":4"))
    }

    func testCompressedFileDecompressesToTheSameTensors() throws {
        let (plain, _) = try quantize(.f16)
        let (z, report) = try quantize(.f16, compress: true)
        XCTAssertTrue(z.tensors.contains { $0.compression == .zstd })
        for t in plain.tensors {
            XCTAssertEqual(try dequantized(plain, t.name), try dequantized(z, t.name), t.name)
        }
        XCTAssertLessThan(report.summaries.reduce(0) { $0 + $1.storedBytes }, report.summaries.reduce(0) { $0 + $1.rawBytes })
    }

    func assertRefused(_ body: @autoclosure () throws -> Any, _ kind: SinkKitError.Kind, _ text: String, line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { e in
            guard let e = e as? SinkKitError else { return XCTFail("\(e)", line: line) }
            XCTAssertEqual(e.kind, kind, e.message, line: line)
            XCTAssertTrue(e.message.contains(text), "\"\(e.message)\" lacks \"\(text)\"", line: line)
        }
    }

    func testGroupThatDoesNotDivideARow() {
        assertRefused(try quantize(.int4, group: 64), .invalidArgument, "group size 64 does not divide the row length 32 of model.layers.0.mlp.gate_proj.weight")
    }
    func testInvalidGroupAndOverride() {
        assertRefused(try quantize(.int8, group: 64), .invalidArgument, "not valid for int8")
        assertRefused(try quantize(.int4, overrides: ["q_proj=int3"]), .invalidArgument, "unknown type int3")
        assertRefused(try quantize(.int4, overrides: ["q_proj"]), .invalidArgument, "REGEX=TYPE")
    }
    func testNonLlamaConfig() throws {
        let d = Fixture.scratch() + "/m"
        try FileManager.default.copyItem(atPath: Fixture.base("llama-f32"), toPath: d)
        var j = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d + "/config.json"))) as! [String: Any]
        j["model_type"] = "bert"
        try JSONSerialization.data(withJSONObject: j).write(to: URL(fileURLWithPath: d + "/config.json"))
        assertRefused(try quantize(.int8, model: d), .config, "not a LLaMA-family model")
    }
    func testNaNWeightRefusedWithTensorName() throws {
        let d = Fixture.scratch() + "/m"
        try FileManager.default.copyItem(atPath: Fixture.base("llama-f32"), toPath: d)
        let src = try SafetensorsFile(path: d + "/model.safetensors")
        let tmp = d + "/new.safetensors"
        let w = try SafetensorsWriter(path: tmp, entries: src.tensors.map { .init(name: $0.name, dtype: .F32, shape: $0.shape) }, metadata: ["format": "pt"])
        for e in w.order {
            var t = try src.loadF32(e.name)
            if e.name == "model.layers.1.mlp.up_proj.weight" { t.data[17] = .infinity }
            try w.write(name: e.name, tensor: t)
        }
        try w.finish()
        try FileManager.default.removeItem(atPath: d + "/model.safetensors")
        try FileManager.default.moveItem(atPath: tmp, toPath: d + "/model.safetensors")
        assertRefused(try quantize(.int4, model: d), .nonFinite, "model.layers.1.mlp.up_proj.weight")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: d).filter { $0.contains(".tmp-") }, [])
    }
}
