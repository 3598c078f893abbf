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

    /// The Jinja the real templates need (namespaces, per-iteration scoping, unpacking, loop filters,
    /// step slices, keyword arguments, selectattr/map/join/tojson, string methods, tests), each
    /// expected value rendered by transformers' own Jinja environment (jinja2 3.x, trim_blocks and
    /// lstrip_blocks, its tojson). Not covered: tuples (rendered as lists) and dicts' insertion order
    /// (tojson sorts keys).
    func testJinjaFeaturesAsTransformersRendersThem() throws {
        let messages: [[String: String]] = [["role": "system", "content": "S"], ["role": "user", "content": "u1"],
                                            ["role": "assistant", "content": "a1"], ["role": "user", "content": "u2"]]
        let cases: [String: String] = [
            "{% set x = 0 %}{% for i in [1,2] %}{{ x }}{% set x = i %}{{ x }}{% endfor %}|{{ x }}":
                "0102|0",
            "{% set ns = namespace(a=1, b='q') %}{% for i in [1,2,3] %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}{{ ns.b }}":
                "7q",
            "{% for k, v in [['a', 1], ['b', 2]] %}{{ k }}={{ v }};{% endfor %}":
                "a=1;b=2;",
            "{% for m in messages if m.role != 'system' %}{{ loop.index }}:{{ m.role }} {% endfor %}":
                "1:user 2:assistant 3:user ",
            "{{ [1,2,3,4,5][::-1] }}{{ 'abcdef'[1:5:2] }}{{ [1,2,3][-2:] }}":
                "[5, 4, 3, 2, 1]bd[2, 3]",
            "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(', ') }}":
                "u1, u2",
            "{{ messages | rejectattr('role', 'equalto', 'user') | list | length }}":
                "2",
            "{{ {'a': 'x\"y', 'b': [1, 2.5, none, true]} | tojson }}":
                "{\"a\": \"x\\\"y\", \"b\": [1, 2.5, null, true]}",
            "{{ [1, {'k': 'é'}] | tojson(indent=2) }}":
                "[\n  1,\n  {\n    \"k\": \"é\"\n  }\n]",
            "{{ 'a,b,,c'.split(',') }}{{ ' x  y '.split() }}{{ 'aXbX'.replace('X', '-') }}{{ '\\n\\nhi\\n'.lstrip('\\n') }}|{{ 'hi..'.rstrip('.') }}":
                "['a', 'b', '', 'c']['x', 'y']a-b-hi\n|hi",
            "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 3 is odd }} {{ 4 is divisibleby 2 }} {{ 'a' is in ['a'] }}":
                "3 -4 1 True True True",
            "{{ undefined_thing | default('dflt') }} {{ '' | default('e', true) }} {{ [3,1,3] | unique | list }} {{ range(3) | list }}":
                "dflt e [3, 1] [0, 1, 2]",
            "{% for x in [1,2,3] %}{{ loop.previtem }}/{{ loop.nextitem }} {% endfor %}":
                "/2 1/3 2/ ",
            "{{ {'role': 'x'}.get('role') }} {{ dict(a=1) }}":
                "x {'a': 1}",
            "{{- \"}}\" }}{{ '{%' }}":
                "}}{%",
            "{{ 'Hello' is string }} {{ none is none }} {{ strftime_now is defined }} {{ foo is defined }}":
                "True True True False",
        ]
        for (template, want) in cases {
            XCTAssertEqual(try ChatTemplate.render(template: template, messages: messages, addGenerationPrompt: false, bosToken: "", eosToken: ""), want, template)
        }
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
