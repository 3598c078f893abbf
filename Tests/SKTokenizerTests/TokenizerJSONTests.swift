import Foundation
import SKTestSupport
import XCTest
@testable import SKConvert
import SKCore

/// The converter reads tokenizer.json with its own streaming JSON scanner (JSONScanner): what it
/// reads must equal what Foundation's JSONSerialization reads from the same bytes, and bad input
/// must be a specific error, never a crash.
final class TokenizerJSONTests: XCTestCase {
    /// Vocabulary and merges as the JSONSerialization tree gives them (the converter's reading
    /// before the scanner).
    func reference(_ data: Data) throws -> (vocab: [String: Int], merges: [String]) {
        let tj = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let model = try XCTUnwrap(tj["model"] as? [String: Any])
        var vocab: [String: Int] = [:]
        for (k, v) in try XCTUnwrap(model["vocab"] as? [String: Any]) { vocab[k] = (v as! NSNumber).intValue }
        let merges: [String] = (model["merges"] as? [Any] ?? []).map { m in
            if let s = m as? String { return s }
            let p = m as! [String]
            return p[0] + " " + p[1]
        }
        return (vocab, merges)
    }

    func checkAgainstJSONSerialization(_ path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let doc = try TokenizerJSON(data: data, path: path)
        let ref = try reference(data)
        let vocab = try XCTUnwrap(doc.vocab)
        XCTAssertEqual(vocab.count, ref.vocab.count)
        // Compare bytes, not Swift's canonically-equivalent String equality.
        var byBytes: [[UInt8]: Int] = [:]
        for (k, v) in vocab { byBytes[Array(k.utf8)] = v }
        var mismatches = 0
        for (k, v) in ref.vocab where byBytes[Array(k.utf8)] != v { mismatches += 1 }
        XCTAssertEqual(mismatches, 0)
        XCTAssertEqual(doc.merges?.map { Array($0.utf8) }, ref.merges.map { Array($0.utf8) })
    }

    func testSentencePieceStyleFixtureMatchesJSONSerialization() throws {
        try checkAgainstJSONSerialization(Fixture.root + "/Fixtures/tokenizers/llama2-style/tokenizer.json")
    }

    func testSmolLM2MatchesJSONSerialization() throws {
        guard try RealModel.available() else { throw XCTSkip("real SmolLM2 not built") }
        try checkAgainstJSONSerialization(RealModel.checkpoint + "/tokenizer.json")
    }

    /// Escapes, surrogate pairs, raw multi-byte UTF-8, both merge forms, integers and nested skips.
    func testEscapesAndFormsMatchJSONSerialization() throws {
        let text = #"""
        {"version": "1.0", "truncation": null, "padding": {"a": [1, 2.5e-3, -0, true, false, null, {"b": "\u00e9"}]},
         "model": {"type": "BPE", "dropout": null, "byte_fallback": true, "fuse_unk": false, "unk_token": "<unk>",
          "vocab": {"a": 0, "\u0120b": 1, "\"q\"": 2, "back\\slash": 3, "sl\/ash": 4, "nl\n": 5, "\ud83d\ude80": 6,
                    "é": 7, "\u0000": 9, "tab\t": 10},
          "merges": ["a \u0120b", ["\"q\"", "sl/ash"], "é e\u0301"]},
         "added_tokens": [{"id": 11, "content": "<s>", "special": true}], "decoder": {"type": "ByteLevel"}}
        """#
        let data = Data(text.utf8)
        let doc = try TokenizerJSON(data: data, path: "inline")
        let ref = try reference(data)
        XCTAssertEqual(doc.modelType, "BPE")
        XCTAssertEqual(doc.flags["byte_fallback"], true)
        XCTAssertEqual(doc.flags["fuse_unk"], false)
        XCTAssertEqual(doc.strings["unk_token"], "<unk>")
        let vocab = try XCTUnwrap(doc.vocab)
        XCTAssertEqual(vocab.count, 10)
        for (k, v) in vocab { XCTAssertEqual(ref.vocab.first { Array($0.key.utf8) == Array(k.utf8) }?.value, v, k.debugDescription) }
        XCTAssertEqual(doc.merges?.map { Array($0.utf8) }, ref.merges.map { Array($0.utf8) })
        let trees = try doc.smallTrees()
        XCTAssertEqual(Set(trees.keys), ["added_tokens", "decoder"])
        XCTAssertEqual(((trees["added_tokens"] as? [[String: Any]])?.first?["content"] as? String), "<s>")
    }

    /// "é" and "e" + U+0301 are two tokens to `tokenizers` (it compares bytes); Swift's String
    /// equality (canonical equivalence) would merge them, and so does JSONSerialization's
    /// [String: Any]. The scanner keeps both, with their ids.
    func testCanonicallyEquivalentTokensStayDistinct() throws {
        let text = #"{"model": {"vocab": {"\u00e9": 0, "e\u0301": 1}, "merges": []}}"#
        let vocab = try XCTUnwrap(try TokenizerJSON(data: Data(text.utf8), path: "t.json").vocab)
        XCTAssertEqual(vocab.map { Array($0.0.utf8) }, [[0xC3, 0xA9], [0x65, 0xCC, 0x81]])
        XCTAssertEqual(vocab.map(\.1), [0, 1])
    }

    func rejects(_ text: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try TokenizerJSON(data: Data(text.utf8), path: "t.json"), file: file, line: line) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("t.json") && m.contains(fragment), "message: \(m)", file: file, line: line)
        }
    }

    func testMalformedInputIsASpecificError() {
        rejects(#"{"model": {"vocab": {"a": 0}}"#, "unexpected end of input")
        rejects(#"{"model": {"vocab": {"a": 0}}} x"#, "unexpected data after")
        rejects(#"{"model": {"vocab": {"a": 1.5}}}"#, "expected an integer")
        rejects(#"{"model": {"vocab": {"a": 99999999999999999999}}}"#, "out of range")
        rejects(#"{"model": {"vocab": {"a": "0"}}}"#, "has no valid id")
        rejects(#"{"model": {"vocab": {"\q": 0}}}"#, "invalid escape")
        rejects(#"{"model": {"vocab": {"\ud83d": 0}}}"#, "surrogate")
        rejects(#"{"model": {"vocab": {"\ude80": 0}}}"#, "surrogate")
        rejects(#"{"model": {"vocab": {"\u12g4": 0}}}"#, "non-hex")
        rejects("{\"model\": {\"vocab\": {\"a\u{1}\": 0}}}", "control character")
        rejects(#"{"model": {"vocab": {"a" 0}}}"#, "expected ':'")
        rejects(#"{"model": {"vocab": {"a": 0,}}}"#, "expected '\"'")
        rejects(#"{"model": {"merges": ["a b", ["a"]], "vocab": {}}}"#, "neither")
        rejects(#"{"model": {"merges": [["a b", "c"]], "vocab": {}}}"#, "containing a space")
        rejects(#"{"model": {}, "model": {}}"#, "appears twice")
        rejects(#"{"model": {"vocab": {}, "vocab": {}}}"#, "appears twice")
        rejects(#"{"model": 01}"#, "expected ',' or '}'")
        rejects(#"[1, 2]"#, "not a JSON object")
        rejects(#"{"no_model": {}}"#, "no \"model\" object")
        rejects(#"{"model": "# + String(repeating: "[", count: 600), "deeper than 512")
        // Invalid UTF-8 inside a string.
        var bad = Array(#"{"model": {"vocab": {"a"#.utf8)
        bad += [0xC3, 0x28]
        bad += Array(#"": 0}}}"#.utf8)
        XCTAssertThrowsError(try TokenizerJSON(data: Data(bad), path: "t.json")) { XCTAssertTrue("\($0)".contains("UTF-8")) }
    }

    /// Every truncation of a real tokenizer.json is refused with an error (none crashes, none
    /// reads as complete).
    func testEveryTruncationIsRefused() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixture.root + "/Fixtures/tokenizers/llama2-style/tokenizer.json"))
        let end = data.lastIndex { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }!
        var accepted = 0
        for n in stride(from: 0, to: end + 1, by: 53) {
            if (try? TokenizerJSON(data: data.prefix(n), path: "t.json")) != nil { accepted += 1 }
        }
        XCTAssertEqual(accepted, 0)
        XCTAssertNoThrow(try TokenizerJSON(data: data, path: "t.json"))
    }
}
