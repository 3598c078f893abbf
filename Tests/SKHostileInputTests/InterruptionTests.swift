import Foundation
import SKTestSupport
import XCTest

/// Interrupted writes leave nothing behind: SIGINT, SIGTERM and SIGHUP remove the temporary
/// output and exit with 128 + the signal; a temporary left by kill -9 is removed (with a line
/// saying so) by the next run that writes to the same place. Uses the real model, whose merge
/// and quantization take long enough to be interrupted.
final class InterruptionTests: XCTestCase {
    func temporaries(_ dir: String, _ name: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("." + name + ".tmp-") }
    }

    /// Starts `skconv args`, waits until its temporary exists, sends `sig`; returns the exit status.
    func interrupt(_ args: [String], dir: String, name: String, signal sig: Int32) throws -> Int32 {
        let p = Process()
        p.executableURL = Executable.productsDirectory().appendingPathComponent("skconv")
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(30)
        while temporaries(dir, name).isEmpty && p.isRunning && Date() < deadline { usleep(2_000) }
        XCTAssertTrue(p.isRunning, "skconv finished before it could be interrupted")
        XCTAssertFalse(temporaries(dir, name).isEmpty, "no temporary appeared")
        usleep(50_000)   // well inside the write
        kill(p.processIdentifier, sig)
        p.waitUntilExit()
        return p.terminationStatus
    }

    func testSignalsRemoveTheTemporary() throws {
        guard try RealModel.available() else { throw XCTSkip("real SmolLM2 not built") }
        for (sig, code) in [(SIGINT, Int32(130)), (SIGTERM, 143), (SIGHUP, 129)] {
            let dir = Fixture.scratch()
            let merge = ["merge", "--base", RealModel.checkpoint, "--adapter", RealModel.adapter, "--output", dir + "/out", "--quiet"]
            XCTAssertEqual(try interrupt(merge, dir: dir, name: "out", signal: sig), code, "merge, signal \(sig)")
            XCTAssertEqual(temporaries(dir, "out"), [], "merge, signal \(sig)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out"))
            let quantize = ["quantize", "--model", RealModel.checkpoint, "--type", "int4", "--output", dir + "/q.skm"]
            XCTAssertEqual(try interrupt(quantize, dir: dir, name: "q.skm", signal: sig), code, "quantize, signal \(sig)")
            XCTAssertEqual(temporaries(dir, "q.skm"), [], "quantize, signal \(sig)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/q.skm"))
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    func testStaleTemporaryFromKill9IsRemovedByTheNextRun() throws {
        guard try RealModel.available() else { throw XCTSkip("real SmolLM2 not built") }
        let dir = Fixture.scratch()
        let quantize = ["quantize", "--model", RealModel.checkpoint, "--type", "int4", "--output", dir + "/q.skm"]
        XCTAssertEqual(try interrupt(quantize, dir: dir, name: "q.skm", signal: SIGKILL), 9)
        let left = temporaries(dir, "q.skm")
        XCTAssertEqual(left.count, 1, "kill -9 leaves its temporary (nothing can remove it then)")
        let r = try Executable.run("skconv", ["quantize", "--model", Fixture.base("llama-f32"), "--type", "int8", "--output", dir + "/q.skm"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("removed \(dir)/\(left[0]), a temporary left by process"), r.stderr)
        XCTAssertEqual(temporaries(dir, "q.skm"), [])
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/q.skm"))
        try? FileManager.default.removeItem(atPath: dir)
    }
}
