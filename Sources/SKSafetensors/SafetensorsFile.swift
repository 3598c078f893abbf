import Foundation
import SKCore

/// A safetensors file, mapped read-only and validated the way the reference implementation
/// (huggingface/safetensors `tensor.rs`) validates it: 8-byte little-endian header length
/// capped at 100 MB, a UTF-8 JSON object, known dtypes, `end - begin == numel × size`, and
/// offsets that tile the data buffer exactly (no gap, no overlap, nothing after the last
/// tensor). Every size is checked arithmetic. Unaligned data is accepted.
public final class SafetensorsFile: TensorSource {
    public static let maxHeaderSize = 100_000_000

    public let path: String
    public let file: MappedFile
    /// Offset of the data buffer in the file (8 + header length).
    public let dataStart: Int
    public let metadata: [String: String]
    /// Tensors in file order (by offset).
    public let tensors: [TensorInfo]
    private let offsets: [String: Int]   // absolute byte offset of each tensor
    private let byName: [String: TensorInfo]

    public var sourceDescription: String { path }
    public var tensorNames: [String] { tensors.map(\.name) }
    public func info(_ name: String) -> TensorInfo? { byName[name] }

    public convenience init(path: String) throws {
        try self.init(file: try MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        let path = file.path
        self.path = path
        self.file = file
        guard file.size >= 8 else {
            throw SinkKitError(.truncated, "\(path): \(file.size) bytes is too short for a safetensors file (expected at least the 8-byte header length)")
        }
        let raw = try file.bytes(offset: 0, count: 8)
        let n64 = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
        guard n64 <= UInt64(Self.maxHeaderSize) else {
            throw SinkKitError(.malformedHeader, "\(path): header length \(n64) exceeds the 100000000-byte limit")
        }
        let n = Int(n64)
        guard 8 + n <= file.size else {
            throw SinkKitError(.truncated, "\(path): header claims \(n) bytes but the file has only \(file.size - 8) after the length field")
        }
        let headerBytes = try file.bytes(offset: 8, count: n)
        guard let text = String(validating: headerBytes, as: UTF8.self) else {
            throw SinkKitError(.malformedHeader, "\(path): header is not valid UTF-8")
        }
        guard text.first == "{" else {
            throw SinkKitError(.malformedHeader, "\(path): header must be a JSON object starting with '{'")
        }
        // Duplicate keys are refused: the reference reader keeps the last, Foundation the first.
        do { try StrictJSON.validate(Data(headerBytes), path: "header") } catch let e as SinkKitError {
            throw SinkKitError(.malformedHeader, "\(path): header is not valid safetensors JSON (\(e.message))")
        }
        let parsed: [String: HeaderValue]
        do {
            parsed = try JSONDecoder().decode([String: HeaderValue].self, from: Data(headerBytes))
        } catch {
            throw SinkKitError(.malformedHeader, "\(path): header is not valid safetensors JSON (\(Self.describe(error)))")
        }
        dataStart = 8 + n
        let bufferSize = file.size - dataStart

        var meta: [String: String] = [:]
        var entries: [(TensorInfo, Int, Int)] = []
        for (name, value) in parsed {
            switch value {
            case .metadata(let m):
                guard name == "__metadata__" else {
                    throw SinkKitError(.malformedHeader, "\(path): entry \(name) is not a tensor description (expected dtype, shape, data_offsets)")
                }
                meta = m
            case .tensor(let dtypeName, let shape, let offs):
                guard name != "__metadata__" else {
                    throw SinkKitError(.malformedHeader, "\(path): __metadata__ must map strings to strings")
                }
                guard let dtype = DType(rawValue: dtypeName) else {
                    throw SinkKitError(.unsupportedDType, "\(path): tensor \(name) has unknown dtype \(dtypeName) (expected one of \(DType.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                guard offs.count == 2 else {
                    throw SinkKitError(.malformedHeader, "\(path): tensor \(name) data_offsets has \(offs.count) values, expected [begin, end]")
                }
                let (b, e) = (offs[0], offs[1])
                guard b >= 0, e >= b else {
                    throw SinkKitError(.layout, "\(path): tensor \(name) has invalid data_offsets [\(b), \(e)]")
                }
                let count = try Checked.elementCount(shape, "\(path): tensor \(name) shape")
                let bytes = try Checked.mul(count, dtype.size, "\(path): tensor \(name) byte size")
                guard e - b == bytes else {
                    throw SinkKitError(.layout, "\(path): tensor \(name) spans \(e - b) bytes but \(dtype.rawValue) \(shape) needs \(bytes)")
                }
                entries.append((TensorInfo(name: name, dtype: dtype, shape: shape, elementCount: count, byteCount: bytes), b, e))
            }
        }
        // Offsets must tile [0, bufferSize) exactly.
        entries.sort { ($0.1, $0.2, $0.0.name) < ($1.1, $1.2, $1.0.name) }
        var cursor = 0
        var offsetsByName: [String: Int] = [:]
        for (info, b, e) in entries {
            if b > cursor {
                throw SinkKitError(.layout, "\(path): gap of \(b - cursor) bytes before tensor \(info.name) (data_offsets begin \(b), previous tensor ends at \(cursor))")
            }
            if b < cursor {
                throw SinkKitError(.layout, "\(path): tensor \(info.name) overlaps the previous tensor (begins at \(b), previous ends at \(cursor))")
            }
            cursor = e
            offsetsByName[info.name] = dataStart + b
        }
        if cursor > bufferSize {
            throw SinkKitError(.truncated, "\(path): tensors need \(cursor) bytes of data but the file holds \(bufferSize) after the header (truncated?)")
        }
        if cursor < bufferSize {
            throw SinkKitError(.layout, "\(path): \(bufferSize - cursor) bytes after the last tensor are not covered by any data_offsets")
        }
        metadata = meta
        tensors = entries.map(\.0)
        offsets = offsetsByName
        byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
    }

    /// The raw little-endian bytes of a tensor, straight from the mapping.
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let i = byName[name], let off = offsets[name] else {
            throw SinkKitError(.shapeMismatch, "\(path): no tensor named \(name)")
        }
        return try file.bytes(offset: off, count: i.byteCount)
    }

    /// Drops the resident pages of a tensor once the caller is done with it.
    public func release(_ name: String) {
        if let i = byName[name], let off = offsets[name] { file.release(offset: off, count: i.byteCount) }
    }

    /// Hands a float tensor (F32, F16 or BF16) to `body` as f32, in chunks of whole rows of
    /// `rowElements` (at most `chunkElements` each, at least one row), releasing each chunk's pages
    /// after `body` returns; `body` gets the chunk and the index of its first element. An aligned
    /// F32 tensor on a little-endian host is handed over in place, straight from the mapping;
    /// others are decoded into one reused chunk buffer. Peak memory: one chunk, not the tensor.
    /// Returns false, calling nothing, when the tensor is no float type or `rowElements` does not
    /// divide it: then use `loadF32`.
    public func withF32Chunks(_ name: String, rowElements: Int, chunkElements: Int = 1 << 20,
                              _ body: (UnsafeBufferPointer<Float>, Int) throws -> Void) throws -> Bool {
        guard let i = byName[name], let off = offsets[name], i.dtype.isFloatWeight, rowElements > 0,
              i.elementCount % rowElements == 0 else { return false }
        let all = try file.bytes(offset: off, count: i.byteCount)
        let inPlace = i.dtype == .F32 && 1.littleEndian == 1
            && (i.elementCount == 0 || Int(bitPattern: all.baseAddress) % MemoryLayout<Float>.alignment == 0)
        let step = max(1, chunkElements / rowElements) * rowElements
        var buffer = [Float](repeating: 0, count: inPlace ? 0 : min(step, i.elementCount))
        var e = 0
        while e < i.elementCount {
            let n = min(step, i.elementCount - e)
            if inPlace {
                try body(UnsafeBufferPointer(start: (all.baseAddress! + 4 * e).assumingMemoryBound(to: Float.self), count: n), e)
            } else {
                try buffer.withUnsafeMutableBufferPointer { b in
                    try ElementConversion.decode(all.baseAddress! + e * i.dtype.size, dtype: i.dtype, count: n, into: b.baseAddress!)
                    try body(UnsafeBufferPointer(rebasing: b[0..<n]), e)
                }
            }
            file.release(offset: off + e * i.dtype.size, count: n * i.dtype.size)
            e += n
        }
        return true
    }

    public func loadF32(_ name: String) throws -> Tensor {
        guard let i = byName[name], let off = offsets[name] else {
            throw SinkKitError(.shapeMismatch, "\(path): no tensor named \(name)")
        }
        guard i.dtype != .F8_E4M3, i.dtype != .F8_E5M2 else {
            throw SinkKitError(.unsupportedDType, "\(path): tensor \(name) is \(i.dtype.rawValue); expected F32, F16 or BF16")
        }
        var out = [Float](repeating: 0, count: i.elementCount)
        // Convert in chunks and release each chunk's pages as we go: the peak is the f32
        // result plus one chunk, not the result plus the whole mapped tensor.
        let chunkElements = max(1, (4 << 20) / i.dtype.size)
        try out.withUnsafeMutableBufferPointer { dst in
            var e = 0
            while e < i.elementCount {
                let n = min(chunkElements, i.elementCount - e)
                let src = try file.bytes(offset: off + e * i.dtype.size, count: n * i.dtype.size)
                try ElementConversion.decode(src.baseAddress!, dtype: i.dtype, count: n, into: dst.baseAddress! + e)
                file.release(offset: off + e * i.dtype.size, count: n * i.dtype.size)
                e += n
            }
        }
        return Tensor(shape: i.shape, data: out)
    }

    static func describe(_ error: Error) -> String {
        if let d = error as? DecodingError {
            switch d {
            case .dataCorrupted(let c): return c.debugDescription + Self.pathText(c.codingPath)
            case .typeMismatch(_, let c): return c.debugDescription + Self.pathText(c.codingPath)
            case .keyNotFound(let k, let c): return "missing key \(k.stringValue)" + Self.pathText(c.codingPath)
            case .valueNotFound(_, let c): return c.debugDescription + Self.pathText(c.codingPath)
            @unknown default: return "\(d)"
            }
        }
        return "\(error)"
    }

    private static func pathText(_ p: [CodingKey]) -> String {
        p.isEmpty ? "" : " at " + p.map(\.stringValue).joined(separator: ".")
    }
}

/// One value of the header object: a tensor description or the `__metadata__` map.
enum HeaderValue: Decodable {
    case tensor(dtype: String, shape: [Int], offsets: [Int])
    case metadata([String: String])

    private enum Keys: String, CodingKey { case dtype, shape, data_offsets }

    init(from decoder: Decoder) throws {
        if let m = try? decoder.singleValueContainer().decode([String: String].self) {
            self = .metadata(m)
            return
        }
        let c = try decoder.container(keyedBy: Keys.self)
        self = .tensor(dtype: try c.decode(String.self, forKey: .dtype),
                       shape: try c.decode([Int].self, forKey: .shape),
                       offsets: try c.decode([Int].self, forKey: .data_offsets))
    }
}
