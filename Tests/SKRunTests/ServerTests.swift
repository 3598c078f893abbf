import Foundation
import SKTestSupport
import XCTest

/// `skrun serve` through the official `openai` Python client, and the interactive chat under a
/// pseudo-terminal: scripts/test_server.py (31 checks; see its docstring) on the real model.
final class ServerTests: XCTestCase {
    func testServerAndChatEndToEnd() throws {
        guard try RealModel.available() else { throw XCTSkip("real SmolLM2 not built") }
        let model = try Executable.realModelSKM("int8")
        let r = try Executable.python("test_server.py", [Executable.productsDirectory().path, model])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("0 failed"), r.stdout)
        print(r.stdout.split(separator: "\n").last ?? "")
    }
}
