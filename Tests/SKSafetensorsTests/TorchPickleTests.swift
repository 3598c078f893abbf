import Foundation
import SKTestSupport
import XCTest
import SKCore
import SKSafetensors

/// The restricted unpickler: reads what torch.save writes, refuses every other global.
final class TorchPickleTests: XCTestCase {
    func testReadsTorchSaveOfTensors() throws {
        let ck = try TorchCheckpoint(path: Fixture.tiny + "/longlora-trainable_params.bin")
        XCTAssertEqual(ck.info("model.embed_tokens.weight")?.shape, [129, 32])
        XCTAssertEqual(ck.info("model.norm.weight")?.dtype, .F32)
        XCTAssertEqual(ck.tensorNames.count, 1 + 2 * 2 + 1)
        let t = try ck.loadF32("model.norm.weight")
        XCTAssertEqual(t.count, 32)
        XCTAssertTrue(t.data.allSatisfy { $0.isFinite && abs($0) < 10 })
    }

    func testOldStyleAdapterBinMatchesSafetensorsLayout() throws {
        let ck = try TorchCheckpoint(path: Fixture.adapter("bin") + "/adapter_model.bin")
        XCTAssertEqual(ck.info("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")?.shape, [4, 32])
    }

    func testRefusesOsSystem() {
        XCTAssertThrowsError(try TorchCheckpoint(path: Fixture.tiny + "/bad/evil.bin")) { e in
            let e = e as! SinkKitError
            XCTAssertEqual(e.kind, .pickle)
            XCTAssertTrue(e.message.contains("posix.system"), e.message)
        }
    }

    func testRefusesBuiltinsEval() {
        XCTAssertThrowsError(try TorchCheckpoint(path: Fixture.tiny + "/bad/eval.bin")) { e in
            XCTAssertTrue((e as! SinkKitError).message.contains("builtins.eval"))
        }
    }

    func testRefusesNonZipAndTruncatedArchives() throws {
        let dir = NSTemporaryDirectory()
        let notZip = dir + "/notzip-\(UInt32.random(in: 0...UInt32.max)).bin"
        FileManager.default.createFile(atPath: notZip, contents: Data(repeating: 7, count: 100))
        XCTAssertThrowsError(try TorchCheckpoint(path: notZip)) { XCTAssertEqual(($0 as! SinkKitError).kind, .pickle) }
        let good = try Data(contentsOf: URL(fileURLWithPath: Fixture.tiny + "/longlora-trainable_params.bin"))
        let cut = dir + "/cut-\(UInt32.random(in: 0...UInt32.max)).bin"
        FileManager.default.createFile(atPath: cut, contents: good.prefix(good.count / 2))
        XCTAssertThrowsError(try TorchCheckpoint(path: cut))
    }

    func testShardedIndexRules() throws {
        let ck = try ShardedCheckpoint(directory: Fixture.base("llama-sharded"))
        XCTAssertEqual(ck.shards.count, 3)
        XCTAssertEqual(ck.info("lm_head.weight")?.shape, [128, 32])
        // An index naming a tensor its shard lacks.
        let dir = NSTemporaryDirectory() + "/shard-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.copyItem(atPath: Fixture.base("llama-sharded"), toPath: dir)
        let idx = dir + "/model.safetensors.index.json"
        var j = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: idx))) as! [String: Any]
        var wm = j["weight_map"] as! [String: String]
        wm["model.extra.weight"] = wm["lm_head.weight"]
        j["weight_map"] = wm
        try JSONSerialization.data(withJSONObject: j).write(to: URL(fileURLWithPath: idx))
        XCTAssertThrowsError(try ShardedCheckpoint(directory: dir)) { XCTAssertTrue(($0 as! SinkKitError).message.contains("model.extra.weight")) }
        // A missing shard file.
        wm["model.extra.weight"] = nil
        wm["lm_head.weight"] = "model-00009-of-00003.safetensors"
        j["weight_map"] = wm
        try JSONSerialization.data(withJSONObject: j).write(to: URL(fileURLWithPath: idx))
        XCTAssertThrowsError(try ShardedCheckpoint(directory: dir)) { XCTAssertEqual(($0 as! SinkKitError).kind, .io) }
    }

    func testSHA256KnownAnswers() {
        var s = SHA256()
        s.update(bytes: Array("abc".utf8))
        XCTAssertEqual(SHA256.hex(s.finalize()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var l = SHA256()
        l.update(bytes: Array(repeating: UInt8(ascii: "a"), count: 1_000_000))
        XCTAssertEqual(SHA256.hex(l.finalize()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        var e = SHA256()
        XCTAssertEqual(SHA256.hex(e.finalize()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // the same million 'a's in uneven pieces: partial blocks, single bytes, multi-block runs
        var c = SHA256()
        var left = 1_000_000, k = 0
        let sizes = [1, 63, 65, 1000, 64, 7, 4096]
        while left > 0 {
            let n = min(left, sizes[k % sizes.count])
            c.update(bytes: Array(repeating: UInt8(ascii: "a"), count: n))
            left -= n
            k += 1
        }
        XCTAssertEqual(SHA256.hex(c.finalize()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
