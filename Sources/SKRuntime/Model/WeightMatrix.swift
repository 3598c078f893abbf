import SKCore
import SKFormat
import SKKernels

/// A weight tensor as the kernels read it: rows of SKM blocks, straight from the mapping (or
/// from a decompressed copy when the file stores it zstd-compressed). Never expanded to f32.
/// int5-sym is expanded at load to int8 blocks of 32 with the same scales (codes q − 16), which
/// the int8 kernels read: exact, at int8's memory (34 bytes per 32 weights instead of 22).
public final class WeightMatrix {
    public let name: String
    public let type: QuantType
    public let group: Int
    public let rows: Int
    public let cols: Int
    public let rowBytes: Int
    public let base: UnsafeRawPointer
    /// The decompressed bytes, when the file stores the tensor compressed (freed with the matrix).
    let owned: UnsafeMutableRawPointer?
    /// int8 / int4 / int4-sym (group 32) weights in the x8 layout (SKKernels pack.c), built at load when
    /// the CPU's kernel path has an x8 kernel; the file's pages of the tensor are then released,
    /// so the copy does not add to resident memory.
    public private(set) var packed: UnsafeMutableRawPointer?

    init(file: SKMFile, info t: SKMTensorInfo) throws {
        name = t.name
        rows = t.rows
        cols = t.cols
        if t.type.isQuantized && t.cols % 32 != 0 {
            throw SinkKitError(.layout, "\(file.path): \(t.name) rows of \(t.cols) are not a multiple of 32")
        }
        var copy: UnsafeMutableRawPointer?
        var stored: UnsafeRawPointer
        if t.compression == .zstd {
            let c = UnsafeMutableRawPointer.allocate(byteCount: max(1, t.rawBytes), alignment: 64)
            do { try file.decompress(t, into: UnsafeMutableRawBufferPointer(start: c, count: t.rawBytes)) } catch {
                c.deallocate()
                throw error
            }
            copy = c
            stored = UnsafeRawPointer(c)
        } else {
            stored = try file.storedBytes(t).baseAddress ?? UnsafeRawPointer(bitPattern: 64)!
        }
        if t.type == .int5Sym {
            let blocks = t.rows * t.cols / t.group
            let expanded = UnsafeMutableRawPointer.allocate(byteCount: max(1, t.rows * (t.cols / 32) * QuantType.int8.blockBytes(group: 32)), alignment: 64)
            sk_int5_sym_to_int8(stored.assumingMemoryBound(to: UInt8.self), blocks, Int32(t.group), expanded.assumingMemoryBound(to: UInt8.self))
            if let c = copy { c.deallocate() } else if let fileBase = file.file.base {
                file.file.release(offset: stored - UnsafeRawPointer(fileBase), count: t.rawBytes)
            }
            copy = expanded
            stored = UnsafeRawPointer(expanded)
            type = .int8
            group = 32
        } else {
            type = t.type
            group = t.group
        }
        owned = copy
        base = stored
        rowBytes = type.isQuantized ? (cols / group) * type.blockBytes(group: group) : cols * type.blockBytes(group: 0)
    }

    deinit {
        packed?.deallocate()
        owned?.deallocate()
    }

    /// Bytes of rows packed per chunk (about 1 MB; tests make it small to cross chunk boundaries).
    nonisolated(unsafe) static var packChunkBytes = 1 << 20

    /// Bytes of one group of 8 rows in the x8 layout (`packed`).
    var packedGroupBytes: Int {
        (type == .int8 ? Int(SK_X8_INT8_BLOCK_BYTES) : sk_x8_block_bytes(type == .int4 ? 1 : 0)) * (cols / 32)
    }

    /// Repacks int8 / int4 / int4-sym group-32 rows into the x8 layout for `kernels` (no-op where the
    /// path has no x8 kernel, or for other types, groups or row counts), then releases the
    /// tensor's pages of `file`; chunks of rows spread over `threads` workers.
    func packForKernels(_ kernels: UnsafePointer<sk_kernel_table>, file: SKMFile, threads: Int = 1) {
        guard packed == nil, group == 32, rows % 8 == 0, cols % 32 == 0 else { return }
        let k = kernels.pointee
        let hasKernel: Bool
        switch type {
        case .int4, .int4Sym: hasKernel = k.gemv_int4_x8 != nil
        case .int8: hasKernel = k.gemv_int8_x8 != nil
        default: hasKernel = false
        }
        guard hasKernel else { return }
        let dst = UnsafeMutableRawPointer.allocate(byteCount: packedGroupBytes * (rows / 8), alignment: 64)
        let src = base.assumingMemoryBound(to: UInt8.self), out = dst.assumingMemoryBound(to: UInt8.self)
        // about 1 MB of rows at a time, each chunk's file pages released once packed, so a big
        // matrix (a 49,152-row output matrix) never has both copies resident
        let fileBase = owned == nil ? file.file.base : nil
        let chunk = max(8, Self.packChunkBytes / rowBytes / 8 * 8)
        let chunks = (rows + chunk - 1) / chunk
        let type = self.type, rowBytes = self.rowBytes, cols = self.cols, groupBytes = packedGroupBytes, base = self.base
        parallelFor(chunks, threads: threads) { range in
            for c in range {
                let r0 = c * chunk, n = min(chunk, rows - r0)
                if type == .int8 {
                    sk_pack_int8_x8(src + r0 * rowBytes, rowBytes, Int32(n), Int32(cols), out + r0 / 8 * groupBytes)
                } else {
                    sk_pack_int4_x8(src + r0 * rowBytes, rowBytes, Int32(n), Int32(cols), type == .int4 ? 1 : 0, out + r0 / 8 * groupBytes)
                }
                if let fileBase { file.file.release(offset: base + r0 * rowBytes - fileBase, count: n * rowBytes) }
            }
        }
        packed = dst
        // (the pages chunk boundaries split)
        if let fileBase { file.file.release(offset: base - fileBase, count: rows * rowBytes) }
    }

    @inline(__always) public func row(_ r: Int) -> UnsafeRawPointer { base + r * rowBytes }

    /// One row as f32 (token embedding lookup; from the x8 layout when the matrix is packed, as a
    /// tied embedding is: the same values).
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        if let packed {
            let t: Int32 = type == .int8 ? Int32(SK_INT8) : type == .int4 ? Int32(SK_INT4) : Int32(SK_INT4_SYM)
            sk_unpack_x8_row(t, packed + r / 8 * packedGroupBytes, Int32(cols), Int32(r % 8), out)
        } else if type.isQuantized {
            let bb = type.blockBytes(group: group)
            for b in 0..<(cols / group) { Dequantize.block(row(r) + b * bb, type: type, group: group, into: out + b * group) }
        } else {
            Dequantize.block(row(r), type: type, group: cols, into: out)
        }
    }
}
