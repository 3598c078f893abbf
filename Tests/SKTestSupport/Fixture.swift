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

/// Runs a built executable of this package (next to the test bundle) and captures its output.
public enum Executable {
    public static func productsDirectory() -> URL {
        let bundle = Bundle.allBundles.first { $0.bundlePath.hasSuffix(".xctest") }?.bundleURL ?? Bundle.main.bundleURL
        return bundle.deletingLastPathComponent()
    }

    public struct Result { public let status: Int32; public let stdout: String; public let stderr: String }

    public static func run(_ name: String, _ args: [String]) throws -> Result {
        let p = Process()
        p.executableURL = productsDirectory().appendingPathComponent(name)
        p.arguments = args
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
