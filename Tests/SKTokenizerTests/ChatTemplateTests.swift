import Foundation
import SKTestSupport
import XCTest
import SKTokenizer

/// Chat templates rendered byte-identically to transformers' apply_chat_template
/// (Fixtures/generate_chat_goldens.py): SmolLM2, Llama-2, Llama-3, Qwen2 and a multi-line
/// template that exercises trim_blocks, lstrip_blocks and whitespace control.
final class ChatTemplateTests: XCTestCase {
    func testGoldensFromTransformers() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixture.root + "/Fixtures/chat/goldens.json"))
        let g = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let templates = g["templates"] as! [String: [String: String]]
        let cases = g["cases"] as! [[String: Any]]
        var checked = 0
        for c in cases {
            let t = templates[c["template"] as! String]!
            let messages = c["messages"] as! [[String: String]]
            let gen = c["add_generation_prompt"] as! Bool
            let label = "\(c["template"]!) \(messages.count) messages gen=\(gen)"
            if let want = c["rendered"] as? String {
                let got = try ChatTemplate.render(template: t["template"]!, messages: messages, addGenerationPrompt: gen,
                                                  bosToken: t["bos"]!, eosToken: t["eos"]!)
                XCTAssertEqual(got, want, label)
            } else {
                XCTAssertThrowsError(try ChatTemplate.render(template: t["template"]!, messages: messages, addGenerationPrompt: gen,
                                                             bosToken: t["bos"]!, eosToken: t["eos"]!), label) { e in
                    XCTAssertTrue("\(e)".contains("alternate"), "\(e)")
                }
            }
            checked += 1
        }
        XCTAssertEqual(checked, 50)
    }

    /// String length and count as jinja2 3.x renders them (values from jinja2.Environment):
    /// `|length` / `|count` are len() in code points, `.count(sub)` is str.count.
    func testStringLengthAndCountAsJinja() throws {
        let cases = ["{{ 'héllo'|length }}": "5", "{{ 'e\u{301}'|length }}": "2", "{{ 'abc'|count }}": "3",
                     "{{ 'a-b-c'.count('-') }}": "2", "{{ 'aaaa'.count('aa') }}": "2", "{{ 'abc'.count('') }}": "4",
                     "{{ [1, 2]|count }}": "2"]
        for (t, want) in cases {
            XCTAssertEqual(try ChatTemplate.render(template: t, messages: [], addGenerationPrompt: false, bosToken: "", eosToken: ""), want, t)
        }
    }

    func testBadTemplatesAreErrorsNotCrashes() {
        for bad in ["{% if x %}unclosed", "{{ 'unterminated }}", "{% for %}{% endfor %}", "{{ a + }}", "{% frobnicate %}", "{{ 1 % 0 }}"] {
            XCTAssertThrowsError(try ChatTemplate.render(template: bad, messages: [], addGenerationPrompt: true, bosToken: "", eosToken: ""), bad)
        }
    }
}
