import Foundation
import XCTest
import SKCore

/// The small replacements that let the runtime link FoundationEssentials only: printf-style
/// formatting (against Foundation's String(format:)), the JSON tree reader and writer (against
/// JSONSerialization), white-space trimming.
final class FoundationFreeTests: XCTestCase {
    func testPrintfMatchesFoundation() {
        let cases: [(String, [CVarArg], [Any])] = [
            ("%d", [42], [42]), ("%5d|%-5d|%05d", [7, 7, 7], [7, 7, 7]), ("%x %X %08x %02X", [255, 255, 48879, 10], [255, 255, 48879, 10]),
            ("%.1f %.4f %.0f%%", [3.14159, 2.0, 99.6], [3.14159, 2.0, 99.6]), ("%7.3f|%10.3e|%9.1f%%", [1.5, 0.000123, 12.25], [1.5, 0.000123, 12.25]),
            ("%g %e", [1e-7, 12345.678], [1e-7, 12345.678]), ("<0x%02X>", [7], [7]), ("%d%%", [5], [5]),
            ("%.1f MB, %d threads", [123.456, 2], [123.456, 2]), ("%lld and %ld", [Int64(1) << 40, 9], [Int64(1) << 40, 9]),
        ]
        for (f, cArgs, args) in cases {
            XCTAssertEqual(String(printf: f, args), String(format: f, arguments: cArgs), f)
        }
        // %@ takes any value's description, with width and precision.
        XCTAssertEqual(String(printf: "%@ on %@:%@", "model.skm", "127.0.0.1", 8080), "model.skm on 127.0.0.1:8080")
        XCTAssertEqual(String(printf: "[%10@][%-6@][%.3@]", "right", "left", "truncate"), "[     right][left  ][tru]")
        XCTAssertEqual(String(printf: "%d %d", 1), "1 ?")   // a missing argument does not crash
        XCTAssertEqual(String(printf: "%d", "text"), "?")   // nor one of the wrong kind
        XCTAssertEqual(String(printf: "100%"), "100%")
    }

    func testJSONTreeHasSwiftTypes() throws {
        let v = try StrictJSON.object(Data(#"{"a": 1, "b": 2.5e-1, "c": true, "d": null, "e": [1, "x", false], "f": {"g": -0}, "h": 1e400}"#.utf8), path: "t")
        XCTAssertEqual((v["a"] as? JSONNumber)?.intValue, 1)
        XCTAssertEqual((v["b"] as? JSONNumber)?.doubleValue, 0.25)
        XCTAssertNil((v["b"] as? JSONNumber)?.intValue)
        XCTAssertEqual(v["c"] as? Bool, true)
        XCTAssertTrue(v["d"] is JSONNull)
        XCTAssertEqual((v["e"] as? [Any])?.count, 3)
        XCTAssertNil(v["c"] as? JSONNumber, "a boolean is not a number")
        XCTAssertEqual((v["h"] as? JSONNumber)?.doubleValue, .infinity)
        XCTAssertNil((v["h"] as? JSONNumber)?.intValue)
        XCTAssertEqual((try StrictJSON.parse(Data("3.0".utf8), path: "t") as? JSONNumber)?.intValue, 3)
        XCTAssertEqual((try StrictJSON.parse(Data("99999999999999999999".utf8), path: "t") as? JSONNumber)?.intValue, nil)
    }

    func testJSONRefusesWhatJSONSerializationWouldAcceptAmbiguously() {
        XCTAssertThrowsError(try StrictJSON.parse(Data(#"{"a":1,"a":2}"#.utf8), path: "t"))
        // two keys that differ in bytes but are the same Swift String (canonical equivalence)
        XCTAssertThrowsError(try StrictJSON.parse(Data("{\"\u{E9}\":1,\"e\u{301}\":2}".utf8), path: "t"))
        XCTAssertThrowsError(try StrictJSON.parse(Data("[1] x".utf8), path: "t"))
        XCTAssertThrowsError(try StrictJSON.parse(Data(String(repeating: "[", count: 600).utf8), path: "t"))
    }

    func testJSONWriterReadsBackThroughJSONSerialization() throws {
        let tree: [String: Any] = ["s": "quote \" backslash \\ newline \n tab \t nul \u{0} slash / é 🚀", "i": -42, "d": 0.1, "f": Float(0.1),
                                   "b": false, "n": JSONNull(), "o": Optional<Int>.none as Any, "p": Optional(5) as Any,
                                   "a": [1, 2.5, "x"] as [Any], "e": [String: Any](), "l": JSONNumber(literal: "1e-05"), "u": UInt64.max]
        let text = try JSONWriter.string(tree)
        let back = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
        XCTAssertEqual(back["s"] as? String, tree["s"] as? String)
        XCTAssertEqual(back["i"] as? Int, -42)
        XCTAssertEqual(back["d"] as? Double, 0.1)
        XCTAssertEqual(back["f"] as? Double, 0.1)
        XCTAssertEqual(back["b"] as? Bool, false)
        XCTAssertTrue(back["n"] is NSNull)
        XCTAssertTrue(back["o"] is NSNull)
        XCTAssertEqual(back["p"] as? Int, 5)
        XCTAssertEqual((back["a"] as? [Any])?.count, 3)
        XCTAssertEqual(back["l"] as? Double, 1e-05)
        XCTAssertTrue(text.contains("\"l\":1e-05"), "a number read from a file keeps its literal")
        XCTAssertTrue(text.hasPrefix("{\"a\":"), "keys sorted")
        let pretty = try JSONWriter.string(["k": [1]], pretty: true)
        XCTAssertEqual(pretty, "{\n  \"k\": [\n    1\n  ]\n}")
        XCTAssertThrowsError(try JSONWriter.string(["x": Double.nan]))
        XCTAssertThrowsError(try JSONWriter.string(["x": Date()]))
    }

    func testTrimmingWhitespace() {
        XCTAssertEqual(" \t\n x y \u{3000}\r\n".trimmingWhitespace(), "x y")
        XCTAssertEqual("   ".trimmingWhitespace(), "")
        XCTAssertEqual(Substring("a").trimmingWhitespace(), "a")
    }
}
