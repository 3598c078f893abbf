import Foundation
import SKTestSupport
import XCTest

/// The README's five-minute walk-through, run as written (the `sh` block between its
/// `walkthrough` markers) with the built programs first on PATH, on the real model.
final class ReadmeTests: XCTestCase {
    func testWalkthroughRunsAsWritten() throws {
        guard try RealModel.available() else { throw XCTSkip("real SmolLM2 not built") }
        let readme = try String(contentsOfFile: Fixture.root + "/README.md", encoding: .utf8)
        guard let start = readme.range(of: "<!-- walkthrough:start -->"), let end = readme.range(of: "<!-- walkthrough:end -->"),
              start.upperBound < end.lowerBound else { return XCTFail("README has no walkthrough markers") }
        var block = String(readme[start.upperBound..<end.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(block.hasPrefix("```sh") && block.hasSuffix("```"), "the walk-through is one sh block")
        block = String(block.dropFirst(5).dropLast(3))
        let script = Fixture.scratch() + "/walkthrough.sh"
        try ("set -euo pipefail\n" + block).write(toFile: script, atomically: true, encoding: .utf8)
        let bin = Executable.productsDirectory().path
        let r = try Executable.runProcess("/bin/bash", [script], directory: Fixture.root,
                                          environment: ["PATH": bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")])
        XCTAssertEqual(r.status, 0, "walk-through failed:\n" + r.stdout.suffix(2000) + "\n" + r.stderr.suffix(3000))
        XCTAssertTrue(r.stdout.contains("Paris"), "the chat answer: " + r.stdout.prefix(500))
        XCTAssertTrue(r.stdout.contains("\"chat.completion\"") || r.stdout.contains("\"choices\""), "the server's answer: " + r.stdout.suffix(800))
        XCTAssertTrue(r.stdout.contains("perplexity"), r.stdout)
    }
}
