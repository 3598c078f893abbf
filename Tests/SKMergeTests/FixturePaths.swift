import Foundation

/// Paths into the committed fixtures (`Fixtures/tiny`, made by Fixtures/generate_fixtures.py).
enum Fixture {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.path + "/Package.swift") { return url.path }
        }
        fatalError("package root not found above \(#filePath)")
    }()
    static let tiny = root + "/Fixtures/tiny"
    static func base(_ name: String) -> String { tiny + "/" + name }
    static func adapter(_ name: String) -> String { tiny + "/adapters/" + name }
    static func expected(_ name: String) -> String { tiny + "/expected/" + name + ".safetensors" }

    static func scratch(_ name: String = #function) -> String {
        let d = NSTemporaryDirectory() + "sinkkit-tests-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}
