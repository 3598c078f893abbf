import Foundation
import SKCore
import SKFormat

/// `skconv inspect FILE.skm [--verify] [--json]`.
enum InspectSKM {
    /// Whether `path` starts with SKM's magic; anything but a regular file is refused first (a FIFO
    /// would block the read).
    static func isSKM(_ path: String) throws -> Bool {
        let (fd, size) = try InputFile.open(path)
        defer { close(fd) }
        guard size >= 8 else { return false }
        var magic = [UInt8](repeating: 0, count: 8)
        return read(fd, &magic, 8) == 8 && magic == SKM.magic
    }

    static func run(path: String, verify: Bool, json: Bool) throws {
        let f = try SKMFile(path: path)
        if verify { try f.verify() }
        func show(_ v: SKMValue) -> Any {
            switch v {
            case .bool(let b): return b
            case .int(let i): return i
            case .double(let d): return d
            case .string(let s): return s
            case .intArray(let a): return a
            case .doubleArray(let a): return a
            case .stringArray(let a): return a
            }
        }
        if json {
            var meta: [String: Any] = [:]
            for k in f.metadataKeys {
                let v = f.metadata[k]!
                if case .stringArray(let a) = v { meta[k] = "[\(a.count) strings]" } else { meta[k] = show(v) }
            }
            let d: [String: Any] = [
                "version": "\(f.major).\(f.minor)", "file_bytes": f.file.size, "verified": verify, "metadata": meta,
                "tensors": f.tensors.map { ["name": $0.name, "type": $0.type.userName, "group": $0.group, "shape": $0.shape,
                                            "stored_bytes": $0.storedBytes, "raw_bytes": $0.rawBytes,
                                            "compression": $0.compression == .zstd ? "zstd" : "none",
                                            "crc32": String(format: "%08x", $0.crc32)] },
            ]
            print(try JSONWriter.string(d, pretty: true))
            return
        }
        print("SKM \(f.major).\(f.minor), \(formatBytes(f.file.size)), \(f.tensors.count) tensors, \(f.metadata.count) metadata keys")
        let w = max(4, f.tensors.map(\.name.count).max() ?? 4)
        print("name".padding(toLength: w, withPad: " ", startingAt: 0) + "  type      group  shape                stored")
        var params = 0
        for t in f.tensors {
            let shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
            print(t.name.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + t.type.userName.padding(toLength: 8, withPad: " ", startingAt: 0) +
                  String(format: "  %5d  ", t.group) + shape.padding(toLength: 19, withPad: " ", startingAt: 0) + "  " + formatBytes(t.storedBytes) +
                  (t.compression == .zstd ? " (zstd)" : ""))
            params += t.elementCount
        }
        print(String(format: "%d parameters, %.3f bits per weight (whole file)", params, 8 * Double(f.file.size) / Double(max(1, params))))
        for k in f.metadataKeys {
            let v = f.metadata[k]!
            var text: String
            switch v {
            case .stringArray(let a): text = "[\(a.count) strings: \(a.prefix(3).map { "\"\($0)\"" }.joined(separator: ", "))\(a.count > 3 ? ", …" : "")]"
            case .intArray(let a): text = "\(a)"
            case .string(let s): text = s.count > 100 ? String(s.prefix(97)).replacingOccurrences(of: "\n", with: "\\n") + "…" : s.replacingOccurrences(of: "\n", with: "\\n")
            default: text = "\(show(v))"
            }
            print("\(k): \(text)")
        }
        if verify { print("verify: header and all \(f.tensors.count) tensor checksums OK") }
    }
}
