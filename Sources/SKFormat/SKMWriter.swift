import CZstd
import SKCore

/// Writes an SKM file (Formats/SKM.md) tensor by tensor. The header's size is known up front
/// (names, types and shapes are), so its space is reserved, tensors are streamed after it, and
/// the header with the final offsets and checksums is written last. The caller writes to a
/// temporary path and renames (see `OutputTarget`).
public final class SKMWriter {
    public private(set) var tensors: [SKMTensorInfo]
    let metadata: [(String, SKMValue)]
    let out: OutputFile
    let dataOffset: Int
    let headerSize: Int
    let compressionLevel: Int32?
    var next = 0
    var cursor = 0          // bytes written in the data section

    /// - Parameters:
    ///   - tensors: name, type, group and shape of every tensor, in the order they will be written.
    ///   - compressionLevel: zstd level for `--compress`, nil to store tensors as they are.
    public init(path: String, metadata: [(String, SKMValue)], tensors: [SKMTensorInfo], compressionLevel: Int32? = nil) throws {
        var seen = Set<String>()
        for t in tensors {
            guard seen.insert(t.name).inserted else { throw SinkKitError(.invalidArgument, "duplicate tensor name \(t.name)") }
            guard (1...4).contains(t.shape.count) else { throw SinkKitError(.invalidArgument, "\(t.name): SKM tensors have 1 to 4 dimensions, not \(t.shape.count)") }
            guard t.name.utf8.count <= Int(UInt16.max) else { throw SinkKitError(.invalidArgument, "tensor name too long: \(t.name.prefix(40))…") }
        }
        var keys = Set<String>()
        for (k, _) in metadata where !keys.insert(k).inserted { throw SinkKitError(.invalidArgument, "duplicate metadata key \(k)") }
        self.metadata = metadata
        self.tensors = tensors
        self.compressionLevel = compressionLevel
        var w = ByteWriter()
        for (k, v) in metadata { w.str16(k); w.value(v) }
        headerSize = w.bytes.count + tensors.reduce(0) { $0 + $1.entryBytes }
        dataOffset = (SKM.fileHeaderSize + headerSize + SKM.alignment - 1) / SKM.alignment * SKM.alignment
        out = try OutputFile(path: path)
        try out.write([UInt8](repeating: 0, count: dataOffset))
    }

    /// Writes the next tensor's raw (uncompressed) bytes; returns the bytes stored.
    @discardableResult
    public func write(name: String, raw: UnsafeRawBufferPointer) throws -> Int {
        guard next < tensors.count, tensors[next].name == name else {
            throw SinkKitError(.io, "\(out.path): tensor \(name) written out of order")
        }
        var t = tensors[next]
        let want = t.type.byteCount(rows: t.rows, cols: t.cols, group: t.group)
        guard raw.count == want else {
            throw SinkKitError(.io, "\(out.path): tensor \(name) has \(raw.count) bytes, \(t.type.userName) \(t.shape) needs \(want ?? -1)")
        }
        t.offset = cursor
        t.rawBytes = raw.count
        var stored = raw
        var compressed: [UInt8] = []
        if let level = compressionLevel, raw.count > 0 {
            compressed = try Self.zstdCompress(raw, level: level, name: name)
            if compressed.count < raw.count {
                t.compression = .zstd
            }
        }
        try compressed.withUnsafeBytes { c in
            if t.compression == .zstd { stored = c }
            t.storedBytes = stored.count
            t.crc32 = CRC32.checksum(stored)
            try out.write(stored)
        }
        cursor += t.storedBytes
        let pad = (SKM.alignment - cursor % SKM.alignment) % SKM.alignment
        if pad > 0 && next + 1 < tensors.count {
            try out.write([UInt8](repeating: 0, count: pad))
            cursor += pad
        }
        tensors[next] = t
        next += 1
        return t.storedBytes
    }

    /// Writes the header and table with the final offsets and checksums, then flushes.
    /// `replacing` gives final values for metadata keys that were known only by their size when
    /// the writer was made (source digests computed while the tensors were written): each key
    /// must exist and its value must encode to the same number of bytes.
    public func finish(replacing updates: [(String, SKMValue)] = []) throws {
        guard next == tensors.count else { throw SinkKitError(.io, "\(out.path): only \(next) of \(tensors.count) tensors were written") }
        var final = metadata
        for (k, v) in updates {
            guard let i = final.firstIndex(where: { $0.0 == k }) else {
                throw SinkKitError(.invalidArgument, "\(out.path): metadata key \(k) was not reserved")
            }
            final[i].1 = v
        }
        var body = ByteWriter()
        for (k, v) in final { body.str16(k); body.value(v) }
        for t in tensors { t.encode(into: &body) }
        guard body.bytes.count == headerSize else {
            throw SinkKitError(.invalidArgument, "\(out.path): final metadata takes \(body.bytes.count) header bytes, \(headerSize) were reserved")
        }
        var h = ByteWriter()
        h.bytes += SKM.magic
        h.u16(SKM.major); h.u16(SKM.minor); h.u32(SKM.byteOrderTag)
        h.u64(UInt64(headerSize)); h.u64(UInt64(dataOffset)); h.u64(UInt64(cursor))
        h.u32(UInt32(metadata.count)); h.u32(UInt32(tensors.count)); h.u32(UInt32(SKM.alignment))
        h.u32(tensors.contains { $0.compression == .zstd } ? 1 : 0)
        var crc = CRC32()
        crc.update(h.bytes)
        crc.update(body.bytes)
        h.u32(crc.value); h.u32(0)
        try (h.bytes + body.bytes).withUnsafeBytes { try out.write($0, at: 0) }
        try out.close()
    }

    static func zstdCompress(_ raw: UnsafeRawBufferPointer, level: Int32, name: String) throws -> [UInt8] {
        guard let cctx = ZSTD_createCCtx() else { throw SinkKitError(.io, "zstd: cannot create a compression context") }
        defer { ZSTD_freeCCtx(cctx) }
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, 0)
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(raw.count))
        let n = out.withUnsafeMutableBytes { ZSTD_compress2(cctx, $0.baseAddress, $0.count, raw.baseAddress, raw.count) }
        if ZSTD_isError(n) != 0 {
            throw SinkKitError(.io, "zstd: compressing \(name) failed (\(String(cString: ZSTD_getErrorName(n))))")
        }
        out.removeSubrange(n...)
        return out
    }
}
