import SKCore

/// Writes a GGUF v3 file: metadata, tensor infos, then each tensor's bytes at the next multiple of
/// the alignment (32), streamed one tensor at a time (the caller hands each tensor's stored
/// blocks over in the declared order). The layout is the one `GGUFFile` reads; llama.cpp and the
/// `gguf` Python package read it too.
public final class GGUFWriter {
    public enum Value {
        case u32(UInt32), i32(Int32), u64(UInt64), f32(Float), bool(Bool), string(String)
        case strings([String]), i32s([Int32])
    }
    public struct TensorEntry {
        public let name: String
        /// PyTorch order (rows first); written innermost first.
        public let shape: [Int]
        public let type: Int32
        public let byteCount: Int
        public init(name: String, shape: [Int], type: Int32, byteCount: Int) {
            self.name = name; self.shape = shape; self.type = type; self.byteCount = byteCount
        }
    }

    public static let alignment = 32
    let out: OutputFile
    let entries: [TensorEntry]
    private var next = 0
    private var dataWritten = 0

    /// Writes the header (metadata and tensor table) to `path`; tensors follow with `write`.
    public init(path: String, metadata: [(String, Value)], tensors: [TensorEntry]) throws {
        out = try OutputFile(path: path)
        entries = tensors
        var h: [UInt8] = Array("GGUF".utf8)
        Self.u32(&h, 3)
        Self.u64(&h, UInt64(tensors.count))
        Self.u64(&h, UInt64(metadata.count))
        for (k, v) in metadata {
            Self.string(&h, k)
            switch v {
            case .u32(let x): Self.u32(&h, 4); Self.u32(&h, x)
            case .i32(let x): Self.u32(&h, 5); Self.u32(&h, UInt32(bitPattern: x))
            case .f32(let x): Self.u32(&h, 6); Self.u32(&h, x.bitPattern)
            case .bool(let x): Self.u32(&h, 7); h.append(x ? 1 : 0)
            case .string(let s): Self.u32(&h, 8); Self.string(&h, s)
            case .u64(let x): Self.u32(&h, 10); Self.u64(&h, x)
            case .strings(let a):
                Self.u32(&h, 9); Self.u32(&h, 8); Self.u64(&h, UInt64(a.count))
                for s in a { Self.string(&h, s) }
            case .i32s(let a):
                Self.u32(&h, 9); Self.u32(&h, 5); Self.u64(&h, UInt64(a.count))
                for x in a { Self.u32(&h, UInt32(bitPattern: x)) }
            }
        }
        var offset = 0
        for t in tensors {
            Self.string(&h, t.name)
            Self.u32(&h, UInt32(t.shape.count))
            for n in t.shape.reversed() { Self.u64(&h, UInt64(n)) }
            Self.u32(&h, UInt32(bitPattern: t.type))
            Self.u64(&h, UInt64(offset))
            offset = Self.aligned(offset + t.byteCount)
        }
        h += [UInt8](repeating: 0, count: Self.aligned(h.count) - h.count)
        try out.write(h)
    }

    /// The next tensor's stored bytes (exactly its declared byte count).
    public func write(_ bytes: [UInt8]) throws {
        guard next < entries.count else { throw SinkKitError(.layout, "\(out.path): more tensors written than declared") }
        let e = entries[next]
        guard bytes.count == e.byteCount else {
            throw SinkKitError(.layout, "\(out.path): tensor \(e.name) has \(bytes.count) bytes, \(e.byteCount) declared")
        }
        try out.write(bytes)
        let pad = Self.aligned(bytes.count) - bytes.count
        if pad > 0 && next + 1 < entries.count { try out.write([UInt8](repeating: 0, count: pad)) }
        next += 1
    }

    public func finish() throws {
        guard next == entries.count else { throw SinkKitError(.layout, "\(out.path): \(entries.count - next) tensors were not written") }
        try out.close()
    }

    static func aligned(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
    static func u32(_ h: inout [UInt8], _ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { h += $0 } }
    static func u64(_ h: inout [UInt8], _ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { h += $0 } }
    static func string(_ h: inout [UInt8], _ s: String) { u64(&h, UInt64(s.utf8.count)); h += Array(s.utf8) }
}
