import Foundation
import SKTestSupport
import XCTest
import SKCore
import SKSafetensors
import SKFormat

/// The real `skconv` binary, end to end: exit codes, messages, outputs.
final class SKConvCLITests: XCTestCase {
    func skconv(_ args: String...) throws -> Executable.Result { try Executable.run("skconv", args) }

    func testMergeTinyWithJSONSummary() throws {
        let out = Fixture.scratch() + "/m"
        let r = try skconv("merge", "--base", Fixture.base("llama-f32"), "--adapter", Fixture.adapter("plain"),
                           "--adapter", Fixture.adapter("second"), "--output", out, "--json", "--quiet")
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(j["lora_modules_merged"] as? Int, 12)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/config.json"))
    }

    func testBadInputExitsNonZeroWithOneLineError() throws {
        let out = Fixture.scratch() + "/m"
        let r = try skconv("merge", "--base", Fixture.base("llama-f32"), "--adapter", Fixture.adapter("layer-replication"), "--output", out)
        XCTAssertEqual(r.status, 3)   // an input error
        XCTAssertTrue(r.stderr.hasPrefix("error: "), r.stderr)
        XCTAssertTrue(r.stderr.contains("layer_replication"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testUsageErrorsExitTwo() throws {
        let r = try skconv("merge", "--base", Fixture.base("llama-f32"), "--output", "/tmp/x", "--adapter", "a", "--dtype", "f8")
        XCTAssertEqual(r.status, 2, r.stderr) // the usage-error status of SinkKit's exit table
        XCTAssertTrue(r.stderr.contains("--dtype"))
        let n = try skconv("merge", "--base", Fixture.base("llama-f32"), "--output", "/tmp/x")
        XCTAssertNotEqual(n.status, 0)
        XCTAssertTrue(n.stderr.contains("nothing to merge"))
    }

    func testInspectDirectoryAndFile() throws {
        let d = try skconv("inspect", Fixture.base("llama-sharded"))
        XCTAssertEqual(d.status, 0, d.stderr)
        XCTAssertTrue(d.stdout.contains("model.layers.1.mlp.down_proj.weight"))
        XCTAssertTrue(d.stdout.contains("config num_key_value_heads: 2"))
        let f = try skconv("inspect", "--json", Fixture.expected("plain"))
        XCTAssertEqual(f.status, 0, f.stderr)
        let j = try JSONSerialization.jsonObject(with: Data(f.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((j["tensors"] as! [Any]).count, 21)
    }

    func testInspectGGUF() throws {
        let g = try skconv("inspect", "--json", Fixture.root + "/Fixtures/gguf/tiny-llama.gguf")
        XCTAssertEqual(g.status, 0, g.stderr)
        let j = try JSONSerialization.jsonObject(with: Data(g.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((j["tensors"] as! [[String: Any]]).count, 21)
        XCTAssertEqual((j["config"] as? [String: Any])?["num_key_value_heads"] as? Int, 2)
        XCTAssertNil(j["not_readable"])
        let types = Set((j["tensors"] as! [[String: Any]]).compactMap { $0["type"] as? String })
        XCTAssertEqual(types, ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"])
        let bad = try skconv("inspect", Fixture.root + "/Fixtures/gguf/unsupported-arch.gguf")
        XCTAssertEqual(bad.status, 0, bad.stderr)
        XCTAssertTrue(bad.stdout.contains("skconv cannot convert it: ") && bad.stdout.contains("gemma9"), bad.stdout)
    }

    func testInspectCorruptFileIsAnErrorNotACrash() throws {
        let p = Fixture.scratch() + "/bad.safetensors"
        let good = try Data(contentsOf: URL(fileURLWithPath: Fixture.expected("plain")))
        FileManager.default.createFile(atPath: p, contents: good.prefix(good.count - 100))
        let r = try skconv("inspect", p)
        XCTAssertEqual(r.status, 3)
        XCTAssertTrue(r.stderr.contains("truncated"), r.stderr)
    }

    /// The real SmolLM2 checkpoint merged with a generated r=8 adapter (q/k/v/o + embedding):
    /// matches numpy's merge of the same tensors and stays within the memory budget of
    /// twice the largest tensor plus the adapter, mapped pages included.
    func testRealModelMergeInBoundedMemory() throws {
        guard try RealModel.available() else { throw XCTSkip("real SmolLM2 not built (scripts/make_smollm2.py)") }
        let out = Fixture.scratch() + "/smollm2-merged"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try skconv("merge", "--base", RealModel.checkpoint, "--adapter", RealModel.adapter, "--output", out, "--json", "--quiet")
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let peak = j["peak_rss_bytes"] as! Int, largest = j["largest_tensor_bytes"] as! Int
        let adapterBytes = try FileManager.default.attributesOfItem(atPath: RealModel.adapter + "/adapter_model.safetensors")[.size] as! Int
        XCTAssertEqual(largest, 49152 * 576 * 4)
        XCTAssertLessThan(peak, 2 * largest + adapterBytes, "peak RSS \(peak) over budget")
        XCTAssertEqual(j["lora_modules_merged"] as? Int, 121)

        let merged = try SafetensorsFile(path: out + "/model.safetensors")
        let expected = try SafetensorsFile(path: RealModel.adapter + "/expected_spot.safetensors")
        for name in expected.tensorNames {
            let a = try merged.loadF32(name), b = try expected.loadF32(name)
            var worst: Float = 0
            for i in 0..<a.count { worst = max(worst, abs(a.data[i] - b.data[i])) }
            XCTAssertLessThan(worst, 1e-5, name)
        }
        let ins = try skconv("inspect", out)
        XCTAssertEqual(ins.status, 0)
        XCTAssertTrue(ins.stdout.contains("272 tensors"))
    }
}

/// `skconv quantize` and `skconv inspect` on SKM files, end to end.
final class SKConvQuantizeCLITests: XCTestCase {
    func skconv(_ args: String...) throws -> Executable.Result { try Executable.run("skconv", args) }

    func testQuantizeTinyAndInspectVerify() throws {
        let out = Fixture.scratch() + "/t.skm"
        let r = try skconv("quantize", "--model", Fixture.base("llama-f32"), "--type", "int4", "--output", out)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("int4"))
        XCTAssertTrue(r.stdout.contains("bits per weight"))
        let i = try skconv("inspect", "--verify", out)
        XCTAssertEqual(i.status, 0, i.stderr)
        XCTAssertTrue(i.stdout.contains("all 21 tensor checksums OK"))
        let j = try skconv("inspect", "--json", out)
        let d = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((d["tensors"] as! [Any]).count, 21)
    }

    func testUnknownTypeIsAUsageError() throws {
        let r = try skconv("quantize", "--model", Fixture.base("llama-f32"), "--type", "int3", "--output", Fixture.scratch() + "/x.skm")
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("--type: unknown type int3"), r.stderr)
    }

    /// llama.cpp's names: Q8_0/Q4_0/Q4_1 are the SKM types with the same blocks (same bytes);
    /// K-quants and other types SKM lacks are refused by name.
    func testLlamaCppTypeNamesAreAliasesOrRefused() throws {
        for (alias, type) in [("q8_0", "int8"), ("Q4_0", "int4-sym"), ("q4_1", "int4"), ("q5_0", "int5-sym")] {
            let a = Fixture.scratch() + "/a.skm", b = Fixture.scratch() + "/b.skm"
            XCTAssertEqual(try skconv("quantize", "--model", Fixture.base("llama-f32"), "--type", alias, "--output", a).status, 0)
            XCTAssertEqual(try skconv("quantize", "--model", Fixture.base("llama-f32"), "--type", type, "--output", b).status, 0)
            let ia = try skconv("inspect", "--json", a), ib = try skconv("inspect", "--json", b)
            let ta = (try JSONSerialization.jsonObject(with: Data(ia.stdout.utf8)) as! [String: Any])["tensors"] as! [[String: Any]]
            let tb = (try JSONSerialization.jsonObject(with: Data(ib.stdout.utf8)) as! [String: Any])["tensors"] as! [[String: Any]]
            XCTAssertEqual(ta.map { "\($0["name"]!) \($0["type"]!) \($0["crc32"] ?? "")" }, tb.map { "\($0["name"]!) \($0["type"]!) \($0["crc32"] ?? "")" }, alias)
        }
        for bad in ["q4_k_m", "Q6_K", "q5_1", "iq4_xs", "bf16"] {
            let r = try skconv("quantize", "--model", Fixture.base("llama-f32"), "--type", bad, "--output", Fixture.scratch() + "/x.skm")
            XCTAssertEqual(r.status, 2, bad)
            XCTAssertTrue(r.stderr.contains("--type: "), r.stderr)
            XCTAssertTrue(r.stderr.lowercased().contains(bad.lowercased()), r.stderr)
        }
        let r = try skconv("quantize", "--model", Fixture.base("llama-f32"), "--type", "q4_k_m", "--output", Fixture.scratch() + "/x.skm")
        XCTAssertTrue(r.stderr.contains("Q4_K_M has no SKM equivalent"), r.stderr)
    }

    func testOutputNamedForAnotherFormatIsRefused() throws {
        for name in ["model.onnx", "model.safetensors", "model.BIN"] {
            let out = Fixture.scratch() + "/" + name
            let r = try skconv("quantize", "--model", Fixture.base("llama-f32"), "--type", "int8", "--output", out)
            XCTAssertEqual(r.status, 2, name)
            XCTAssertTrue(r.stderr.contains("writes an SKM file"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
        // .gguf is GGUF out: refused before any work when the model cannot be written as GGUF (the
        // tiny fixture's tokenizer has no pre-tokenizer llama.cpp names), nothing left behind.
        let dir = Fixture.scratch()
        let r = try skconv("quantize", "--model", Fixture.base("llama-f32"), "--type", "int8", "--output", dir + "/model.gguf")
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertTrue(r.stderr.contains("pre-tokenizer") && !r.stderr.contains("quantize 1/"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
        let g = try skconv("quantize", "--model", Fixture.base("llama-f32"), "--type", "int8", "--group", "64", "--output", dir + "/model.gguf")
        XCTAssertNotEqual(g.status, 0)
    }

    /// Not on a terminal, progress is periodic lines with the time left (interval from the
    /// environment), and nothing with --json.
    func testProgressLinesWhenNotATerminal() throws {
        let env = ["SINKKIT_PROGRESS_INTERVAL": "0"]
        let q = try Executable.run("skconv", ["quantize", "--model", Fixture.base("llama-f32"), "--type", "int8", "--output", Fixture.scratch() + "/p.skm"], environment: env)
        XCTAssertEqual(q.status, 0, q.stderr)
        XCTAssertTrue(q.stderr.contains("quantize 1/"), q.stderr)
        XCTAssertTrue(q.stderr.contains(" s left"), q.stderr)
        XCTAssertFalse(q.stderr.contains("\u{1B}["), "no terminal escapes in a log")
        let m = try Executable.run("skconv", ["merge", "--base", Fixture.base("llama-f32"), "--adapter", Fixture.adapter("plain"), "--output", Fixture.scratch() + "/pm"], environment: env)
        XCTAssertEqual(m.status, 0, m.stderr)
        XCTAssertTrue(m.stderr.contains("merge 1/"), m.stderr)
        let j = try Executable.run("skconv", ["quantize", "--model", Fixture.base("llama-f32"), "--type", "int8", "--output", Fixture.scratch() + "/j.skm", "--json"], environment: env)
        XCTAssertFalse(j.stderr.contains("quantize 1/"), j.stderr)
    }

    func testVersionNamesReleaseAndCommit() throws {
        for tool in ["skconv", "skrun"] {
            let r = try Executable.run(tool, ["--version"])
            XCTAssertEqual(r.status, 0)
            XCTAssertTrue(r.stdout.hasPrefix(SinkKitVersion.release + " (commit "), r.stdout)
        }
    }

    func testExistingOutputRefusedWithoutForce() throws {
        let out = Fixture.scratch() + "/t.skm"
        FileManager.default.createFile(atPath: out, contents: Data("keep".utf8))
        let r = try skconv("quantize", "--model", Fixture.base("llama-f32"), "--type", "int8", "--output", out)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("--force"))
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "keep")
    }

    /// A write that fails part way (a full disk, simulated with RLIMIT_FSIZE so the test needs
    /// no privileges) leaves no partial file and no temporary behind.
    func testFailedWriteLeavesNothing() throws {
        let dir = Fixture.scratch()
        let bin = Executable.productsDirectory().appendingPathComponent("skconv").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        // (SIGXFSZ left at its default: skconv itself ignores it, so the write fails with EFBIG)
        p.arguments = ["-c", "ulimit -f 16; exec \"$0\" quantize --model \"$1\" --type int8 --output \"$2\"", bin, Fixture.base("llama-f32"), dir + "/t.skm"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = Pipe()
        try p.run()
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 4, e)   // an I/O error
        XCTAssertTrue(e.contains("error: ") && e.contains("File too large"), e)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    /// On the tiny model (Gaussian weights, no 4-bit grid) every int4 block goes through the
    /// search: the Python reader must reproduce those bytes too.
    func testIndependentReaderOnSearchedBlocks() throws {
        for type in ["int4", "int4-sym", "int5-sym"] {
            let out = Fixture.scratch() + "/t.skm"
            XCTAssertEqual(try skconv("quantize", "--model", Fixture.base("llama-f32"), "--type", type, "--output", out).status, 0)
            let r = try Executable.python("skm_reader.py", [out, "--check-against", Fixture.base("llama-f32"), "--json"])
            XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
            let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            XCTAssertEqual(j["byte_identical"] as? Int, 21, type)
        }
    }

    func testInspectRejectsCorruptSKM() throws {
        let out = Fixture.scratch() + "/t.skm"
        XCTAssertEqual(try skconv("quantize", "--model", Fixture.base("llama-f32"), "--type", "int8", "--output", out).status, 0)
        var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
        b[b.count - 3] ^= 0xFF
        try Data(b).write(to: URL(fileURLWithPath: out))
        let r = try skconv("inspect", "--verify", out)
        XCTAssertEqual(r.status, 3)
        XCTAssertTrue(r.stderr.contains("checksum mismatch"), r.stderr)
    }
}

/// The real SmolLM2 quantized to int8 and int4: sizes against llama.cpp's GGUFs, checksums,
/// corruption caught in every tensor, and the independent Python reader (written from
/// Formats/SKM.md) reproducing every stored byte with numpy.
final class RealModelQuantizeTests: XCTestCase {
    func file(_ type: String) throws -> String { try Executable.realModelSKM(type) }

    func testSizesAgainstLlamaCppGGUFs() throws {
        guard try RealModel.available() else { throw XCTSkip("real SmolLM2 not built") }
        let size = { (p: String) in try FileManager.default.attributesOfItem(atPath: p)[.size] as! Int }
        XCTAssertLessThanOrEqual(try size(try file("int8")), 144_811_072, "int8 must not exceed llama.cpp's Q8_0 GGUF")
        XCTAssertLessThanOrEqual(try size(try file("int4")), 100_000_000, "default int4 must stay within 100 MB (Q4_1 GGUF: 98.4 MB)")
    }

    func testFlippedByteInEveryTensorIsCaught() throws {
        guard try RealModel.available() else { throw XCTSkip("real SmolLM2 not built") }
        let path = try file("int4")
        XCTAssertNoThrow(try SKMFile(path: path, verify: true))
        let copy = Fixture.scratch() + "/flip.skm"
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        let tensors = try SKMFile(path: copy).tensors
        let h = try FileHandle(forUpdating: URL(fileURLWithPath: copy))
        defer { try? h.close() }
        let dataOffset = try SKMFile(path: copy).dataOffset
        for (i, t) in tensors.enumerated() {
            let at = UInt64(dataOffset + t.offset + (i * 7919) % t.storedBytes)
            try h.seek(toOffset: at)
            let b = try h.read(upToCount: 1)![0]
            try h.seek(toOffset: at)
            try h.write(contentsOf: Data([b ^ 0x01]))
            let f = try SKMFile(path: copy)
            XCTAssertThrowsError(try f.verify(f.info(t.name)!), t.name) { e in
                XCTAssertTrue((e as! SinkKitError).message.contains(t.name))
            }
            try h.seek(toOffset: at)
            try h.write(contentsOf: Data([b]))
        }
        XCTAssertNoThrow(try SKMFile(path: copy, verify: true))
    }

    /// int4-sym is the one whose SIMD search skips the error sums of candidates that cannot win:
    /// numpy's full search (every candidate, every sum) must still give the same bytes (~30 s).
    func testIndependentPythonReaderReproducesEveryByte() throws {
        guard try RealModel.available() else { throw XCTSkip("real SmolLM2 not built") }
        for type in ["int8", "int4", "int4-sym"] {
            let r = try Executable.python("skm_reader.py", [try file(type), "--check-against", RealModel.checkpoint, "--json"])
            XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
            let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            XCTAssertEqual(j["checksums"] as? String, "ok")
            XCTAssertEqual(j["dequantized"] as? Int, 272)
            XCTAssertEqual(j["byte_identical"] as? Int, 272, "\(type): \(j["mismatches"] ?? "")")
            XCTAssertEqual(j["value_identical"] as? Int, 272)
        }
    }
}
