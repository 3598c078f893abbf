import Foundation
import SKTestSupport
import XCTest
import SKConvert
import SKCore
import SKFormat
import SKRuntime
import SKTokenizer

/// Token ids against the Python `tokenizers` package (Fixtures/generate_tokenizer_goldens.py):
/// the whole GPL-3 text, hand-picked samples and 10,000 random strings, for SmolLM2's byte-level
/// BPE, a Llama-2-style SentencePiece BPE and a Llama-3-style regex-split byte-level BPE. The tokenizer goes through the real pipeline:
/// tokenizer.json → SKM metadata (converter) → TokenizerSpec (runtime).
final class TokenizerGoldenTests: XCTestCase {
    func tokenizer(_ dir: String) throws -> Tokenizer {
        let meta = Dictionary(uniqueKeysWithValues: try TokenizerMetadata.entries(directory: dir))
        return try Tokenizer(spec: try TokenizerSpec(metadata: meta, path: dir))
    }

    func check(_ name: String, _ dir: String) throws {
        let tok = try tokenizer(dir)
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixture.root + "/Fixtures/tokenizers/\(name)-goldens.json"))
        let cases = (try JSONSerialization.jsonObject(with: data) as! [String: Any])["cases"] as! [[String: Any]]
        XCTAssertGreaterThan(cases.count, 10_000)
        var encodeFailures = 0, decodeFailures = 0
        for c in cases {
            let text = c["text"] as! String, ids = (c["ids"] as! [NSNumber]).map(\.intValue)
            let got = tok.encode(text, addSpecialTokens: c["add_special_tokens"] as! Bool)
            if got != ids {
                encodeFailures += 1
                if encodeFailures <= 5 { XCTFail("\(name) encode \(text.debugDescription.prefix(80)): got \(got.prefix(20)), want \(ids.prefix(20))") }
            }
            let want = c["decoded"] as? String ?? text
            let back = tok.decode(ids)
            if back != want {
                decodeFailures += 1
                if decodeFailures <= 5 { XCTFail("\(name) decode: got \(back.debugDescription.prefix(80)), want \(want.debugDescription.prefix(80))") }
            }
        }
        XCTAssertEqual(encodeFailures, 0, "\(name): encode mismatches")
        XCTAssertEqual(decodeFailures, 0, "\(name): decode mismatches")
    }

    func testSmolLM2ByteLevelBPE() throws {
        guard try RealModel.available() else { throw XCTSkip("real SmolLM2 not built") }
        try check("smollm2", RealModel.checkpoint)
    }

    func testLlama2StyleSentencePieceBPE() throws {
        try check("llama2-style", Fixture.root + "/Fixtures/tokenizers/llama2-style")
    }

    /// NFKC (the generated compatibility table), Digits runs (\p{N}), a Split on Llama-3's regex
    /// (the standard library's regex engine) and byte-level BPE without its own regex.
    func testLlama3StyleRegexSplitNFKC() throws {
        try check("llama3-style", Fixture.root + "/Fixtures/tokenizers/llama3-style")
    }

    func testStreamingNeverSplitsACharacter() throws {
        let tok = try tokenizer(Fixture.root + "/Fixtures/tokenizers/llama2-style")
        let text = "naïve 日本語 🚀 done"
        var d = StreamDecoder(tokenizer: tok, skipSpecialTokens: false)  // this fixture marks its byte tokens special
        var pieces: [String] = []
        for id in tok.encode(text) { pieces.append(d.push(id)) }
        pieces.append(d.flush())
        XCTAssertFalse(pieces.joined().contains("\u{FFFD}"))
        XCTAssertEqual(pieces.joined(), text)
        XCTAssertTrue(pieces.contains("") , "a byte-fallback character spans several tokens, so some pushes emit nothing")
    }

    /// fuse_unk: consecutive symbols outside the vocabulary (no byte fallback) give one unknown
    /// token or one each. Expected ids from tokenizers 0.x: `BPE(vocab={"<unk>": 0, "a": 1,
    /// "b": 2}, merges=[], unk_token="<unk>", fuse_unk=...)` on "aééb" and "éaé".
    func testFuseUnk() throws {
        for (fuse, want) in [(false, [1, 0, 0, 2]), (true, [1, 0, 2])] {
            var spec = TokenizerSpec(vocab: ["<unk>", "a", "b"], merges: [])
            spec.unkToken = "<unk>"
            spec.fuseUnk = fuse
            let tok = try Tokenizer(spec: spec)
            XCTAssertEqual(tok.encode("a\u{e9}\u{e9}b"), want, "fuse_unk \(fuse)")
            XCTAssertEqual(tok.encode("\u{e9}a\u{e9}"), [0, 1, 0], "fuse_unk \(fuse)")
        }
    }
}
