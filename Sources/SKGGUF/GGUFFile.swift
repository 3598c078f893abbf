#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SKCore
import SKKernels
#if canImport(Glibc)
import Glibc
#endif

/// A GGUF file (versions 2 and 3), the format of llama.cpp, ollama and LM Studio, read from a
/// stranger: every count, length and offset is checked against the file before anything is
/// allocated from it; the tensor data is mapped, not read.
///
/// Layout: "GGUF", u32 version, u64 tensor count, u64 metadata count; the metadata (key: u64
/// length + UTF-8; u32 value type; value); the tensor infos (name; u32 dims; u64 ne[dims],
/// innermost first; u32 ggml type; u64 offset from the data section); the data section at the next
/// multiple of `general.alignment` (default 32).
public final class GGUFFile {
    public enum Value: Sendable, Equatable {
        case uint(UInt64), int(Int64), float(Double), bool(Bool), string(String), array([Value])

        public var int: Int? {
            switch self {
            case .uint(let v): return v <= UInt64(Int.max) ? Int(v) : nil
            case .int(let v): return Int(v)
            default: return nil
            }
        }
        public var double: Double? {
            switch self {
            case .float(let v): return v
            case .uint(let v): return Double(v)
            case .int(let v): return Double(v)
            default: return nil
            }
        }
        public var string: String? { if case .string(let s) = self { return s }; return nil }
        public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
        public var array: [Value]? { if case .array(let a) = self { return a }; return nil }
    }

    public struct Tensor: Sendable {
        public let name: String
        /// ne[0] (the row length) first, as GGUF stores it.
        public let ne: [Int]
        public let type: Int32
        public let offset: Int
        public let byteCount: Int
        public var elementCount: Int { ne.reduce(1, *) }
        /// PyTorch order (rows first): a linear weight is [out, in].
        public var shape: [Int] { ne.reversed() }
    }

    public static let maxStringBytes = 1 << 24
    public static let maxArrayElements = 1 << 26
    /// Elements of one tensor (Llama-3-70B's largest has 1.1 billion).
    public static let maxTensorElements = 1 << 36

    public let path: String
    public let file: MappedFile
    public let version: Int
    public let metadata: [String: Value]
    public let metadataKeys: [String]
    public let tensors: [Tensor]
    public let dataOffset: Int
    private let byName: [String: Int]

    public func tensor(_ name: String) -> Tensor? { byName[name].map { tensors[$0] } }

    /// True when the file starts with GGUF's magic (for choosing a reader by content).
    public static func isGGUF(_ path: String) -> Bool {
        guard let (fd, size) = try? InputFile.open(path) else { return false }
        defer { close(fd) }
        guard size >= 4 else { return false }
        var magic = [UInt8](repeating: 0, count: 4)
        return pread(fd, &magic, 4, 0) == 4 && magic == Array("GGUF".utf8)
    }

    public convenience init(path: String) throws {
        guard InputFile.isRegularFile(path) else { throw SinkKitError(.io, "\(path): not a regular file") }
        try self.init(file: try MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        path = file.path
        self.file = file
        guard let base = file.base, file.size >= 24 else {
            throw SinkKitError(.truncated, "\(file.path): \(file.size) bytes, shorter than a GGUF header (24)")
        }
        var r = Reader(p: base, size: file.size, path: file.path)
        guard try r.bytes(4).elementsEqual("GGUF".utf8) else {
            throw SinkKitError(.malformedHeader, "\(file.path): not a GGUF file (no GGUF magic)")
        }
        let v = try r.u32()
        guard v == 2 || v == 3 else {
            throw SinkKitError(.malformedHeader, "\(file.path): GGUF version \(v) is not supported (expected 2 or 3)")
        }
        version = Int(v)
        let nTensors = try r.u64(), nKV = try r.u64()
        // Each metadata entry and tensor info takes at least 12 and 24 bytes: counts beyond what
        // the file could hold are refused before anything is allocated for them.
        guard nKV <= UInt64(file.size / 12), nTensors <= UInt64(file.size / 24) else {
            throw SinkKitError(.malformedHeader, "\(file.path): \(nTensors) tensors and \(nKV) metadata entries cannot fit in \(file.size) bytes")
        }
        var meta: [String: Value] = [:], keys: [String] = []
        for _ in 0..<Int(nKV) {
            let key = try r.string()
            let type = try r.u32()
            let value = try r.value(type: type, depth: 0)
            guard meta.updateValue(value, forKey: key) == nil else {
                throw SinkKitError(.malformedHeader, "\(file.path): metadata key \(key) appears twice")
            }
            keys.append(key)
        }
        metadata = meta
        metadataKeys = keys
        var alignment = 32
        if let a = meta["general.alignment"] {
            guard let n = a.int, n > 0, n <= 1 << 16, n & (n - 1) == 0 else {
                throw SinkKitError(.malformedHeader, "\(file.path): general.alignment must be a power of two up to 65536")
            }
            alignment = n
        }
        var infos: [(String, [Int], Int32, Int)] = []
        for _ in 0..<Int(nTensors) {
            let name = try r.string()
            let dims = try r.u32()
            guard (1...4).contains(dims) else { throw SinkKitError(.malformedHeader, "\(file.path): tensor \(name) has \(dims) dimensions (1 to 4)") }
            var ne: [Int] = []
            for _ in 0..<dims {
                let n = try r.u64()
                guard n >= 1, n <= UInt64(GGUFFile.maxTensorElements) else {
                    throw SinkKitError(.malformedHeader, "\(file.path): tensor \(name) has a dimension of \(n)")
                }
                ne.append(Int(n))
            }
            let type = try r.u32()
            let off = try r.u64()
            guard off <= UInt64(file.size) else { throw SinkKitError(.layout, "\(file.path): tensor \(name) starts past the end of the file") }
            infos.append((name, ne, Int32(bitPattern: type), Int(off)))
        }
        dataOffset = (r.offset + alignment - 1) / alignment * alignment
        var list: [Tensor] = [], index: [String: Int] = [:]
        for (name, ne, type, off) in infos {
            var be: Int32 = 0, bb: Int32 = 0
            guard sk_ggml_block_info(type, &be, &bb) != 0 else {
                throw SinkKitError(.unsupportedDType, "\(file.path): tensor \(name) has ggml type \(Self.typeName(type)), which SinkKit does not read (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)")
            }
            let elements = try Checked.elementCount(ne, "\(file.path): tensor \(name) size")
            guard elements <= GGUFFile.maxTensorElements else { throw SinkKitError(.overflow, "\(file.path): tensor \(name) has \(elements) elements") }
            guard ne[0] % Int(be) == 0 else {
                throw SinkKitError(.layout, "\(file.path): tensor \(name) rows of \(ne[0]) are not a whole number of \(Self.typeName(type)) blocks (\(be))")
            }
            let bytes = elements / Int(be) * Int(bb)
            guard off % alignment == 0, dataOffset + off + bytes <= file.size else {
                throw SinkKitError(.truncated, "\(file.path): tensor \(name) (\(bytes) bytes at data offset \(off)) runs past the end of the file or is misaligned")
            }
            guard index.updateValue(list.count, forKey: name) == nil else {
                throw SinkKitError(.malformedHeader, "\(file.path): tensor \(name) appears twice")
            }
            list.append(Tensor(name: name, ne: ne, type: type, offset: off, byteCount: bytes))
        }
        // Tensors may not overlap.
        let sorted = list.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw SinkKitError(.layout, "\(file.path): tensors \(a.name) and \(b.name) overlap")
        }
        tensors = list
        byName = index
    }

    /// The stored bytes of a tensor (a view of the mapping).
    public func rawBytes(_ t: Tensor) throws -> UnsafeRawBufferPointer {
        try file.bytes(offset: dataOffset + t.offset, count: t.byteCount)
    }

    /// Releases a tensor's mapped pages (a walk over the file keeps about one tensor resident).
    public func release(_ t: Tensor) { file.release(offset: dataOffset + t.offset, count: t.byteCount) }

    /// A tensor decoded to f32, in its stored (GGUF) row order.
    public func dequantize(_ t: Tensor) throws -> [Float] {
        let raw = try rawBytes(t)
        var be: Int32 = 0, bb: Int32 = 0
        _ = sk_ggml_block_info(t.type, &be, &bb)
        var out = [Float](repeating: 0, count: t.elementCount)
        out.withUnsafeMutableBufferPointer { dst in
            _ = sk_ggml_dequantize(t.type, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), t.elementCount / Int(be), dst.baseAddress!)
        }
        release(t)
        return out
    }

    public static func typeName(_ t: Int32) -> String {
        let names: [Int32: String] = [0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K",
                                      11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS",
                                      19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32",
                                      27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4"]
        return names[t] ?? "type \(t)"
    }
}

/// Bounded little-endian reads over the mapped header.
private struct Reader {
    let p: UnsafeRawPointer
    let size: Int
    let path: String
    var offset = 0

    mutating func need(_ n: Int) throws {
        guard n >= 0, n <= size - offset else {
            throw SinkKitError(.truncated, "\(path): the GGUF header ends at byte \(size), inside a field at \(offset)")
        }
    }
    mutating func bytes(_ n: Int) throws -> UnsafeRawBufferPointer {
        try need(n)
        defer { offset += n }
        return UnsafeRawBufferPointer(start: p + offset, count: n)
    }
    mutating func u8() throws -> UInt8 { try bytes(1)[0] }
    mutating func u32() throws -> UInt32 { let b = try bytes(4); return UInt32(littleEndian: b.loadUnaligned(as: UInt32.self)) }
    mutating func u64() throws -> UInt64 { let b = try bytes(8); return UInt64(littleEndian: b.loadUnaligned(as: UInt64.self)) }
    mutating func string() throws -> String {
        let n = try u64()
        guard n <= UInt64(GGUFFile.maxStringBytes) else { throw SinkKitError(.malformedHeader, "\(path): a string of \(n) bytes at byte \(offset)") }
        let b = try bytes(Int(n))
        guard let s = String(validating: b, as: UTF8.self) else { throw SinkKitError(.malformedHeader, "\(path): a string at byte \(offset - Int(n)) is not valid UTF-8") }
        return s
    }
    mutating func value(type: UInt32, depth: Int) throws -> GGUFFile.Value {
        switch type {
        case 0: return .uint(UInt64(try u8()))
        case 1: return .int(Int64(Int8(bitPattern: try u8())))
        case 2: let b = try bytes(2); return .uint(UInt64(UInt16(littleEndian: b.loadUnaligned(as: UInt16.self))))
        case 3: let b = try bytes(2); return .int(Int64(Int16(littleEndian: b.loadUnaligned(as: Int16.self))))
        case 4: return .uint(UInt64(try u32()))
        case 5: return .int(Int64(Int32(bitPattern: try u32())))
        case 6: return .float(Double(Float(bitPattern: try u32())))
        case 7:
            let b = try u8()
            guard b <= 1 else { throw SinkKitError(.malformedHeader, "\(path): a boolean of \(b) at byte \(offset - 1)") }
            return .bool(b == 1)
        case 8: return .string(try string())
        case 9:
            guard depth == 0 else { throw SinkKitError(.malformedHeader, "\(path): an array of arrays at byte \(offset)") }
            let t = try u32(), n = try u64()
            // Each element takes at least one byte: longer arrays cannot fit.
            guard n <= UInt64(GGUFFile.maxArrayElements), n <= UInt64(size - offset) else {
                throw SinkKitError(.malformedHeader, "\(path): an array of \(n) elements at byte \(offset)")
            }
            var a: [GGUFFile.Value] = []
            a.reserveCapacity(Int(n))
            for _ in 0..<Int(n) { a.append(try value(type: t, depth: depth + 1)) }
            return .array(a)
        case 10: return .uint(try u64())
        case 11: return .int(Int64(bitPattern: try u64()))
        case 12: return .float(Double(bitPattern: try u64()))
        default: throw SinkKitError(.malformedHeader, "\(path): metadata value type \(type) at byte \(offset - 4) is not a GGUF type")
        }
    }
}
