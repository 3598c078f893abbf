import Foundation
import SKTestSupport
import XCTest
import SKConvert
import SKCore
import SKFormat
import SKGGUF
import SKMerge
import SKQuant
import SKSafetensors
import SKTokenizer

/// GGUF in: the reader and ggml's dequantizers against the `gguf` Python package
/// (Fixtures/generate_gguf.py), a llama GGUF converted to SKM (names, q/k rows, carried blocks),
/// and the refusals.
final class GGUFTests: XCTestCase {
    static let dir = Fixture.root + "/Fixtures/gguf"

    func dequantized(_ f: SKMFile, _ name: String) throws -> [Float] {
        let t = f.info(name)!
        return try f.withRawBytes(t) { Dequantize.tensor($0, type: t.type, group: t.group, rows: t.rows, cols: t.cols) }
    }

    /// Every block type decodes to exactly the values gguf.quants.dequantize gives (random blocks:
    /// every bit pattern of codes, signs and sub-block scales occurs).
    func testEveryTypeDequantizesAsGGUFPython() throws {
        let g = try GGUFFile(path: Self.dir + "/types.gguf")
        let expected = try SafetensorsFile(path: Self.dir + "/types-expected.safetensors")
        XCTAssertEqual(g.version, 3)
        let names = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"]
        XCTAssertEqual(Set(g.tensors.map(\.name)), Set(names.map { "t." + $0 }))
        for n in names {
            let t = try XCTUnwrap(g.tensor("t." + n))
            XCTAssertEqual(GGUFFile.typeName(t.type), n)
            XCTAssertEqual(t.shape, [3, 256])
            let got = try g.dequantize(t)
            let want = try expected.loadF32("t." + n).data
            XCTAssertEqual(got.count, want.count)
            let bad = zip(got, want).filter { $0.0.bitPattern != $0.1.bitPattern }.count
            XCTAssertEqual(bad, 0, "\(n): \(bad) of \(want.count) values differ from gguf's dequantization")
        }
    }

    func quantizeTiny(_ type: QuantType, overrides: [String] = [], adapters: [String] = []) throws -> (SKMFile, QuantizeReport) {
        var job = QuantizeJob(modelDirectory: Self.dir + "/tiny-llama.gguf", type: type, output: Fixture.scratch() + "/g.skm")
        job.tensorTypes = overrides
        job.adapterDirectories = adapters
        let r = try SKMConverter(job: job).run()
        return (try SKMFile(path: job.output, verify: true), r)
    }

    /// The tiny llama GGUF (q/k permuted by llama.cpp's rule, matrices in Q8_0, Q4_0, Q4_1, Q5_0,
    /// Q5_1, F16, BF16) read back under transformers' names with transformers' row order.
    func testLlamaGGUFReadsAsTheHuggingFaceCheckpoint() throws {
        let expected = try SafetensorsFile(path: Self.dir + "/tiny-llama-expected.safetensors")
        let base = try GGUFBase(path: Self.dir + "/tiny-llama.gguf")
        XCTAssertEqual(Set(base.tensorNames), Set(expected.tensorNames))
        let hf = try SafetensorsFile(path: Fixture.base("llama-f32") + "/model.safetensors")
        for n in expected.tensorNames {
            XCTAssertEqual(try base.loadF32(n).data, try expected.loadF32(n).data, n)
            XCTAssertEqual(base.info(n)?.shape, hf.info(n)?.shape, n)
        }
        // The un-permuted F32 tensors are the checkpoint's own.
        XCTAssertEqual(try base.loadF32("model.norm.weight").data, try hf.loadF32("model.norm.weight").data)
        XCTAssertEqual(try base.loadF32("lm_head.weight").data, try hf.loadF32("lm_head.weight").data)
        // The config is the checkpoint's, in the fields that change the math.
        let hfConfig = try LlamaConfigProbe(Fixture.base("llama-f32") + "/config.json")
        for k in ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size"] {
            XCTAssertEqual(base.config[k] as? Int, hfConfig[k] as? Int, k)
        }
        XCTAssertEqual(base.config["tie_word_embeddings"] as? Bool, false)

        let (f, report) = try quantizeTiny(.f32)
        for n in expected.tensorNames { XCTAssertEqual(try dequantized(f, n), try expected.loadF32(n).data, n) }
        XCTAssertTrue(report.carriedTensors.isEmpty)
        XCTAssertTrue(f.metadata["provenance.sources"].map { "\($0)".contains("tiny-llama.gguf") } ?? false)
    }

    /// Blocks whose values an SKM type holds are carried over bit for bit (the SKM tensor decodes
    /// to exactly gguf's values); others are re-quantized from the decoded floats.
    func testBlocksCarriedOverBitForBit() throws {
        let expected = try SafetensorsFile(path: Self.dir + "/tiny-llama-expected.safetensors")
        let (f, report) = try quantizeTiny(.int8, overrides: ["q_proj=int4", "k_proj=int4-sym", "v_proj=int5-sym", "down_proj=int4"])
        // q Q4_1 -> int4, k Q4_0 -> int4-sym, v Q5_0 -> int5-sym, o Q8_0 -> int8, embedding Q8_0 -> int8;
        // down is Q5_1 (no SKM type holds it), gate/up are F16/BF16: re-quantized.
        var want: Set<String> = ["model.embed_tokens.weight"]
        for l in 0..<2 { for m in ["q_proj", "k_proj", "v_proj", "o_proj"] { want.insert("model.layers.\(l).self_attn.\(m).weight") } }
        XCTAssertEqual(Set(report.carriedTensors), want)
        for n in want { XCTAssertEqual(try dequantized(f, n), try expected.loadF32(n).data, n) }
        let down = "model.layers.0.mlp.down_proj.weight"
        XCTAssertNotEqual(try dequantized(f, down), try expected.loadF32(down).data)
        // Another type than the one holding the GGUF's values re-quantizes (Q4_1 as int4-sym).
        let (_, other) = try quantizeTiny(.int8, overrides: ["q_proj=int4-sym"])
        XCTAssertFalse(other.carriedTensors.contains("model.layers.0.self_attn.q_proj.weight"))
        XCTAssertTrue(other.carriedTensors.contains("model.layers.0.self_attn.o_proj.weight"))
    }

    /// A PEFT adapter merged onto a GGUF base adds PEFT's delta (merge_and_unload's result minus
    /// the checkpoint, Fixtures/tiny/expected/plain) to the tensors read from the GGUF; the
    /// merged tensors are re-quantized, never carried over.
    func testAdapterOntoGGUFBase() throws {
        let peft = try SafetensorsFile(path: Fixture.expected("plain"))
        let hf = try SafetensorsFile(path: Fixture.base("llama-f32") + "/model.safetensors")
        let gguf = try SafetensorsFile(path: Self.dir + "/tiny-llama-expected.safetensors")
        let (f, report) = try quantizeTiny(.f32, adapters: [Fixture.adapter("plain")])
        XCTAssertEqual(report.loraModulesMerged, 8)
        for l in 0..<2 {
            for m in ["q_proj", "k_proj", "v_proj", "o_proj"] {
                let n = "model.layers.\(l).self_attn.\(m).weight"
                let got = try dequantized(f, n), base = try gguf.loadF32(n).data
                let want = zip(try peft.loadF32(n).data, try hf.loadF32(n).data).map { $0 - $1 }
                var worst: Float = 0, scale: Float = 0
                for i in got.indices { worst = max(worst, abs((got[i] - base[i]) - want[i])); scale = max(scale, abs(want[i])) }
                XCTAssertGreaterThan(scale, 1e-4, "\(n): the adapter changes this tensor")
                XCTAssertLessThan(worst, 1e-6, "\(n): delta differs from PEFT's by \(worst)")
            }
        }
        let (_, r8) = try quantizeTiny(.int8, adapters: [Fixture.adapter("plain")])
        XCTAssertEqual(Set(r8.carriedTensors), ["model.embed_tokens.weight"], "merged q/k/v/o are re-quantized")
    }

    // MARK: GGUF out

    func rawBytes(_ f: SKMFile, _ name: String) throws -> [UInt8] { try f.withRawBytes(f.info(name)!) { Array($0) } }

    /// SKM -> GGUF -> SKM: the GGUF written by the exporter reads back (through the GGUF reader and
    /// the carried-block path) into byte-identical SKM tensors, and the `gguf` Python package
    /// decodes every tensor to exactly the SKM file's values (scripts/check_gguf_export.py).
    func testExportRoundTripsAndReadsInGGUFPython() throws {
        let overrides = ["q_proj=int4", "k_proj=int4-sym", "v_proj=int5-sym", "gate_proj=f16", "up_proj=f32"]
        let (f, _) = try quantizeTiny(.int8, overrides: overrides)
        let gguf = Fixture.scratch() + "/out.gguf"
        let r = try GGUFExporter.export(skm: f.file.path, output: gguf, force: false)
        XCTAssertEqual(r.tensors, f.tensors.count)
        // Norms and up (f32); gate (f16); embedding, head, o and down (int8); q, k, v.
        XCTAssertEqual(r.types, ["F32": 7, "F16": 2, "Q8_0": 6, "Q4_1": 2, "Q4_0": 2, "Q5_0": 2])
        // Back: every tensor carried or copied, byte for byte.
        var job = QuantizeJob(modelDirectory: gguf, type: .int8, output: Fixture.scratch() + "/back.skm")
        job.tensorTypes = overrides
        let back = try SKMConverter(job: job).run()
        XCTAssertEqual(back.carriedTensors.count, 12, "every Q8_0/Q4_0/Q4_1/Q5_0 tensor")
        let g = try SKMFile(path: job.output, verify: true)
        for t in f.tensors {
            XCTAssertEqual(g.info(t.name)?.type, t.type, t.name)
            XCTAssertEqual(try rawBytes(g, t.name), try rawBytes(f, t.name), t.name)
        }
        for k in ["tokenizer.vocab", "tokenizer.merges", "tokenizer.added_tokens", "tokenizer.pre_tokenizer", "tokenizer.chat_template"] {
            XCTAssertEqual(g.metadata[k], f.metadata[k], k)
        }
        let check = try Executable.python("check_gguf_export.py", [f.file.path, gguf])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertTrue(check.stdout.contains("\"identical\": \(f.tensors.count)"), check.stdout)
    }

    /// `skconv quantize --output X.gguf`: the intermediate SKM file is gone afterwards.
    func testQuantizeStraightToGGUF() throws {
        let dir = Fixture.scratch()
        var job = QuantizeJob(modelDirectory: Self.dir + "/tiny-llama.gguf", type: .int4Sym, output: dir + "/m.gguf")
        job.adapterDirectories = [Fixture.adapter("plain")]
        let (report, exported) = try SKMConverter(job: job).runToGGUF()
        XCTAssertEqual(report.loraModulesMerged, 8)
        XCTAssertEqual(exported.fileType, "MOSTLY_Q4_0")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["m.gguf"])
        let read = try GGUFFile(path: dir + "/m.gguf")
        XCTAssertEqual(read.tensor("blk.0.attn_q.weight").map { GGUFFile.typeName($0.type) }, "Q4_0")
        XCTAssertEqual(read.metadata["tokenizer.ggml.pre"]?.string, "gpt-2")
    }

    func testExportRefusals() throws {
        // Blocks of 64 have no ggml type.
        var job = QuantizeJob(modelDirectory: Self.dir + "/tiny-llama.gguf", type: .int8, output: Fixture.scratch() + "/g64.skm")
        job.tensorTypes = ["down_proj=int4:64"]
        _ = try SKMConverter(job: job).run()
        XCTAssertThrowsError(try GGUFExporter.export(skm: job.output, output: Fixture.scratch() + "/x.gguf", force: false)) {
            XCTAssertTrue("\($0)".contains("blocks of 64"), "\($0)")
        }
        // A tokenizer without one of the pre-tokenizers llama.cpp names (the tiny fixture's has none).
        var hf = QuantizeJob(modelDirectory: Fixture.base("llama-f32"), type: .int8, output: Fixture.scratch() + "/hf.skm")
        hf.force = true
        _ = try SKMConverter(job: hf).run()
        let out = Fixture.scratch() + "/y.gguf"
        XCTAssertThrowsError(try GGUFExporter.export(skm: hf.output, output: out, force: false)) {
            XCTAssertTrue("\($0)".contains("pre-tokenizer"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// llama.cpp's importance matrices (llama-imatrix's GGUF form) are read as mean squares
    /// (in_sum2 / counts) under transformers' names, and quantize uses them.
    func testLlamaCppImportanceMatrix() throws {
        let m = try ImportanceMatrix(path: Self.dir + "/tiny-imatrix.gguf")
        let expected = try SafetensorsFile(path: Self.dir + "/tiny-imatrix-expected.safetensors")
        XCTAssertEqual(Set(m.values.keys), Set(expected.tensorNames))
        for n in expected.tensorNames { XCTAssertEqual(m.values[n], try expected.loadF32(n).data, n) }
        XCTAssertTrue(m.provenance.contains("llama.cpp") && m.provenance.contains("calibration.txt"), m.provenance)
        var job = QuantizeJob(modelDirectory: Fixture.base("llama-f32"), type: .int4Sym, output: Fixture.scratch() + "/i.skm")
        job.imatrix = Self.dir + "/tiny-imatrix.gguf"
        let r = try SKMConverter(job: job).run()
        XCTAssertEqual(r.imatrixTensors, 14)
        // A GGUF model is not an importance matrix.
        XCTAssertThrowsError(try ImportanceMatrix(path: Self.dir + "/tiny-llama.gguf")) { XCTAssertTrue("\($0)".contains("not an importance matrix"), "\($0)") }
    }

    func testTokenizerFromMetadata() throws {
        let g = try GGUFFile(path: Self.dir + "/tiny-llama.gguf")
        let tok = try Tokenizer(spec: try GGUFTokenizer.spec(g))
        let hfEntries = try TokenizerMetadata.entries(directory: Fixture.base("llama-f32"))
        let hf = try Tokenizer(spec: try TokenizerSpec(metadata: Dictionary(hfEntries, uniquingKeysWith: { a, _ in a }), path: "hf"))
        XCTAssertEqual(tok.vocab, hf.vocab)
        XCTAssertEqual(tok.bosToken, hf.bosToken)
        XCTAssertEqual(tok.eosToken, hf.eosToken)
    }

    func testRefusals() throws {
        func refused(_ path: String, _ needle: String, file: StaticString = #filePath, line: UInt = #line) {
            var job = QuantizeJob(modelDirectory: path, type: .int8, output: Fixture.scratch() + "/r.skm")
            job.force = false
            XCTAssertThrowsError(try SKMConverter(job: job).run(), file: file, line: line) { e in
                XCTAssertTrue("\(e)".contains(needle), "\(e)", file: file, line: line)
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: job.output), file: file, line: line)
        }
        refused(Self.dir + "/unsupported-arch.gguf", "general.architecture \"gemma9\" is not supported")
        refused(Self.dir + "/unsupported-type.gguf", "ggml type Q2_K, which SinkKit does not read")
        // Truncated anywhere: a clear error, never a crash.
        let whole = try Data(contentsOf: URL(fileURLWithPath: Self.dir + "/tiny-llama.gguf"))
        for cut in [3, 23, 100, 2000, whole.count / 2, whole.count - 1] {
            let p = Fixture.scratch() + "/cut-\(cut).gguf"
            try whole.prefix(cut).write(to: URL(fileURLWithPath: p))
            var job = QuantizeJob(modelDirectory: p, type: .int8, output: Fixture.scratch() + "/r.skm")
            job.force = true
            XCTAssertThrowsError(try SKMConverter(job: job).run(), "cut at \(cut)")
        }
        // Version 1 and a bad alignment.
        var v1 = whole; v1[4] = 1
        let p1 = Fixture.scratch() + "/v1.gguf"
        try v1.write(to: URL(fileURLWithPath: p1))
        XCTAssertThrowsError(try GGUFFile(path: p1)) { XCTAssertTrue("\($0)".contains("GGUF version 1 is not supported"), "\($0)") }
        // skconv merge (a Hugging Face directory out) refuses a GGUF base and says what to use.
        XCTAssertThrowsError(try Merger(job: MergeJob(baseDirectory: Self.dir + "/tiny-llama.gguf", adapterDirectories: [],
                                                      outputDirectory: Fixture.scratch() + "/merged")).run()) {
            XCTAssertTrue("\($0)".contains("skconv quantize --model"), "\($0)")
        }
    }
}

/// config.json as a dictionary (only for comparing fields).
func LlamaConfigProbe(_ path: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
}
