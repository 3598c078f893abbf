import Foundation
import SKCore

/// Writes a safetensors file deterministically: tensors ordered by decreasing element size,
/// then by name (as the reference serializer does, which keeps every tensor naturally aligned),
/// the header padded with spaces so the data buffer starts on an 8-byte boundary, and
/// `__metadata__` keys sorted. Tensor data is streamed one tensor at a time, in that order.
public final class SafetensorsWriter {
    public struct Entry: Equatable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public init(name: String, dtype: DType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }
    }

    /// The order in which `write` must be called.
    public let order: [Entry]
    private let out: OutputFile
    private var next = 0
    private let sizes: [Int]

    /// Creates the file at `path` (the caller's temporary path) and writes its header.
    public init(path: String, entries: [Entry], metadata: [String: String]) throws {
        order = entries.sorted { ($0.dtype.size, $1.name) > ($1.dtype.size, $0.name) }
        var sizes: [Int] = []
        var header = "{"
        var first = true
        if !metadata.isEmpty {
            header += "\"__metadata__\":{"
            header += metadata.keys.sorted().map { JSONText.string($0) + ":" + JSONText.string(metadata[$0]!) }.joined(separator: ",")
            header += "}"
            first = false
        }
        var offset = 0
        for e in order {
            let n = try Checked.mul(try Checked.elementCount(e.shape, e.name), e.dtype.size, e.name)
            sizes.append(n)
            if !first { header += "," }
            first = false
            header += JSONText.string(e.name) + ":{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[" +
                e.shape.map(String.init).joined(separator: ",") + "],\"data_offsets\":[\(offset),\(offset + n)]}"
            offset += n
        }
        header += "}"
        var bytes = Array(header.utf8)
        while (8 + bytes.count) % 8 != 0 { bytes.append(0x20) }
        self.sizes = sizes
        out = try OutputFile(path: path)
        var len = UInt64(bytes.count).littleEndian
        try withUnsafeBytes(of: &len) { try out.write($0) }
        try out.write(bytes)
    }

    /// Writes the next tensor's raw bytes (must be `order[k]` for the k-th call).
    public func write(name: String, bytes: UnsafeRawBufferPointer) throws {
        guard next < order.count, order[next].name == name else {
            throw SinkKitError(.io, "\(out.path): tensor \(name) written out of order (expected \(next < order.count ? order[next].name : "no more tensors"))")
        }
        guard bytes.count == sizes[next] else {
            throw SinkKitError(.io, "\(out.path): tensor \(name) has \(bytes.count) bytes, header promised \(sizes[next])")
        }
        try out.write(bytes)
        next += 1
    }

    /// Encodes an f32 tensor into the entry's dtype and writes it, one chunk at a time, so the
    /// encoded copy never exists whole beside the f32 data.
    public func write(name: String, tensor: Tensor) throws {
        guard next < order.count, order[next].name == name else {
            throw SinkKitError(.io, "\(out.path): tensor \(name) written out of order (expected \(next < order.count ? order[next].name : "no more tensors"))")
        }
        let dtype = order[next].dtype
        guard tensor.count * dtype.size == sizes[next] else {
            throw SinkKitError(.io, "\(out.path): tensor \(name) has \(tensor.count) elements, header promised \(sizes[next] / dtype.size)")
        }
        let chunk = 1 << 18
        var buf = [UInt8](repeating: 0, count: min(tensor.count, chunk) * dtype.size)
        try tensor.data.withUnsafeBufferPointer { src in
            var e = 0
            while e < src.count {
                let n = min(chunk, src.count - e)
                try buf.withUnsafeMutableBytes { dst in
                    try ElementConversion.encode(UnsafeBufferPointer(rebasing: src[e..<(e + n)]), dtype: dtype, into: dst.baseAddress!)
                    try out.write(UnsafeRawBufferPointer(rebasing: dst[0..<(n * dtype.size)]))
                }
                e += n
            }
        }
        next += 1
    }

    /// Writes the next tensor from f32 chunks that `produce` hands to its `emit` argument in
    /// order (each encoded into the entry's dtype and written at once), so neither the f32 tensor
    /// nor its encoded copy ever exists whole. The chunks must add up to the header's size.
    public func write(name: String, produce: ((UnsafeBufferPointer<Float>) throws -> Void) throws -> Void) throws {
        guard next < order.count, order[next].name == name else {
            throw SinkKitError(.io, "\(out.path): tensor \(name) written out of order (expected \(next < order.count ? order[next].name : "no more tensors"))")
        }
        let dtype = order[next].dtype, want = sizes[next] / dtype.size
        var written = 0, buf: [UInt8] = []
        try produce { chunk in
            guard written + chunk.count <= want else {
                throw SinkKitError(.io, "\(out.path): tensor \(name) got more than the \(want) elements the header promised")
            }
            if buf.count < chunk.count * dtype.size { buf = [UInt8](repeating: 0, count: chunk.count * dtype.size) }
            try buf.withUnsafeMutableBytes { dst in
                try ElementConversion.encode(chunk, dtype: dtype, into: dst.baseAddress!)
                try out.write(UnsafeRawBufferPointer(rebasing: dst[0..<(chunk.count * dtype.size)]))
            }
            written += chunk.count
        }
        guard written == want else {
            throw SinkKitError(.io, "\(out.path): tensor \(name) has \(written) elements, header promised \(want)")
        }
        next += 1
    }

    /// Checks that every tensor was written, then flushes and closes.
    public func finish() throws {
        guard next == order.count else {
            throw SinkKitError(.io, "\(out.path): only \(next) of \(order.count) tensors were written")
        }
        try out.close()
    }
}

/// Minimal JSON text helpers for writers that must be byte-deterministic.
public enum JSONText {
    public static func string(_ s: String) -> String {
        var r = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": r += "\\\""
            case "\\": r += "\\\\"
            case "\n": r += "\\n"
            case "\r": r += "\\r"
            case "\t": r += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    r += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    r.unicodeScalars.append(u)
                }
            }
        }
        return r + "\""
    }
}
