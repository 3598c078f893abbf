import Foundation
import SKCore
import SKFormat
import SKTestSupport

/// A scratch directory holding the inputs of one catalogue case, and what it takes to make them
/// hostile: copies of the tiny fixtures, JSON edits, byte patches, rewritten SKM files.
final class Scratch {
    let dir: String
    init() { dir = Fixture.scratch() }

    func path(_ name: String) -> String { dir + "/" + name }

    /// A copy of a tiny fixture model directory (default: the F32 LLaMA with GQA).
    @discardableResult
    func model(_ fixture: String = "llama-f32", as name: String = "model") throws -> String {
        let p = path(name)
        try FileManager.default.copyItem(atPath: Fixture.base(fixture), toPath: p)
        return p
    }

    /// A copy of a tiny adapter fixture.
    @discardableResult
    func adapter(_ fixture: String = "plain", as name: String = "adapter") throws -> String {
        let p = path(name)
        try FileManager.default.copyItem(atPath: Fixture.adapter(fixture), toPath: p)
        return p
    }

    /// The tiny model quantized to int8 by the built skconv (made once per process), copied here.
    @discardableResult
    func skm(as name: String = "model.skm") throws -> String {
        let p = path(name)
        try FileManager.default.copyItem(atPath: try Self.tinySKM(), toPath: p)
        return p
    }

    nonisolated(unsafe) static var cachedSKM: String?
    static func tinySKM() throws -> String {
        if let c = cachedSKM { return c }
        let out = Fixture.scratch() + "/tiny-int8.skm"
        let r = try Executable.run("skconv", ["quantize", "--model", Fixture.base("llama-f32"), "--type", "int8", "--output", out])
        guard r.status == 0 else { throw SinkKitTestError("skconv quantize failed: \(r.stderr)") }
        cachedSKM = out
        return out
    }

    func write(_ name: String, _ text: String) { FileManager.default.createFile(atPath: path(name), contents: Data(text.utf8)) }
    func write(_ name: String, bytes: [UInt8]) { FileManager.default.createFile(atPath: path(name), contents: Data(bytes)) }
    func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name)))) }

    /// Rewrites a JSON object file in place.
    func json(_ name: String, _ edit: (inout [String: Any]) -> Void) throws {
        var d = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path(name)))) as! [String: Any]
        edit(&d)
        try JSONSerialization.data(withJSONObject: d, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path(name)))
    }

    /// Replaces the first occurrence of `old` in a text file by `new`.
    func replace(_ name: String, _ old: String, _ new: String) throws {
        let s = try String(contentsOfFile: path(name), encoding: .utf8)
        guard let r = s.range(of: old) else { throw SinkKitTestError("\(old) not in \(name)") }
        write(name, s.replacingCharacters(in: r, with: new))
    }

    /// Patches bytes of a file.
    func patch(_ name: String, at offset: Int, _ new: [UInt8]) throws {
        var b = try bytes(name)
        let at = offset < 0 ? b.count + offset : offset
        b.replaceSubrange(at..<(at + new.count), with: new)
        write(name, bytes: b)
    }

    func mkfifo(_ name: String) { _ = Foundation.mkfifo(path(name), 0o644) }

    /// An SKM file rewritten from `src` with edited metadata (and optionally extra tensors): a
    /// hand-made file that no converter check has seen.
    func rewriteSKM(_ src: String, to name: String, metadata edit: (inout [(String, SKMValue)]) -> Void,
                    extra: [(SKMTensorInfo, [UInt8])] = []) throws {
        let f = try SKMFile(path: src)
        var meta = f.metadataKeys.map { ($0, f.metadata[$0]!) }
        edit(&meta)
        let infos = f.tensors.map { SKMTensorInfo(name: $0.name, type: $0.type, group: $0.group, shape: $0.shape) } + extra.map(\.0)
        let w = try SKMWriter(path: path(name), metadata: meta, tensors: infos)
        for t in f.tensors { _ = try f.withRawBytes(t) { try w.write(name: t.name, raw: $0) } }
        for (t, b) in extra { _ = try b.withUnsafeBytes { try w.write(name: t.name, raw: $0) } }
        try w.finish()
    }

    /// Sets metadata `key` (replacing or appending).
    static func set(_ m: inout [(String, SKMValue)], _ key: String, _ v: SKMValue?) {
        m.removeAll { $0.0 == key }
        if let v { m.append((key, v)) }
    }

    /// Recomputes an SKM file's header CRC after a byte patch of its header region.
    func fixHeaderCRC(_ name: String) throws {
        var b = try bytes(name)
        let hs = Int(b[16..<24].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.1) << (8 * UInt64($1.0)) })
        var crc = CRC32()
        crc.update(Array(b[0..<56]))
        crc.update(Array(b[64..<(64 + hs)]))
        for k in 0..<4 { b[56 + k] = UInt8(truncatingIfNeeded: crc.value >> (8 * UInt32(k))) }
        write(name, bytes: b)
    }

    /// Offset of the first occurrence of `needle` in a file.
    func find(_ name: String, _ needle: [UInt8]) throws -> Int {
        let b = try bytes(name)
        for i in 0...(b.count - needle.count) where b[i] == needle[0] && Array(b[i..<(i + needle.count)]) == needle { return i }
        throw SinkKitTestError("pattern not found in \(name)")
    }

    /// Every regular file, directory and symlink under the scratch directory with a digest of its
    /// content (files), its target (symlinks): what must be the same before and after a command
    /// that fails.
    func snapshot() -> [String: String] {
        var out: [String: String] = [:]
        func walk(_ rel: String) {
            let p = rel.isEmpty ? dir : dir + "/" + rel
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: p) else { return }
            for n in names {
                let r = rel.isEmpty ? n : rel + "/" + n, full = dir + "/" + r
                var st = stat()
                guard lstat(full, &st) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFREG: out[r] = (try? SHA256.hexDigest(ofFile: full)) ?? "unreadable"
                case S_IFLNK: out[r] = "link:" + ((try? FileManager.default.destinationOfSymbolicLink(atPath: full)) ?? "?")
                case S_IFDIR: out[r] = "dir"; walk(r)
                default: out[r] = "special"
                }
            }
        }
        walk("")
        return out
    }
}

/// Reads and rewrites safetensors files by hand (header JSON + data), for hostile variants.
enum SKSafetensorsProbe {
    static func parse(_ path: String) throws -> (header: [String: Any], data: [UInt8]) {
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let n = Int(b[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.1) << (8 * UInt64($1.0)) })
        let header = try JSONSerialization.jsonObject(with: Data(b[8..<(8 + n)])) as! [String: Any]
        return (header, Array(b[(8 + n)...]))
    }

    /// Absolute byte offset of a tensor's data.
    static func offset(of tensor: String, in path: String) throws -> Int {
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let n = Int(b[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.1) << (8 * UInt64($1.0)) })
        let (header, _) = try parse(path)
        let t = header[tensor] as! [String: Any]
        return 8 + n + ((t["data_offsets"] as! [Any])[0] as! NSNumber).intValue
    }

    static func rewrite(_ path: String, _ edit: (inout [String: Any], inout [UInt8]) -> Void) throws {
        var (header, data) = try parse(path)
        edit(&header, &data)
        let h = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { out += $0 }
        try Data(out + [UInt8](h) + data).write(to: URL(fileURLWithPath: path))
    }
}
