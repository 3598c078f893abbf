import SKKernels

/// A dense f32 tensor, row-major. All merge arithmetic happens on these, whatever the
/// storage type of the checkpoint.
public struct Tensor: Equatable {
    public var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not match \(data.count) elements")
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    public var count: Int { data.count }
    public var rows: Int { shape.first ?? 1 }
    public var cols: Int { shape.count >= 2 ? shape.dropFirst().reduce(1, *) : 1 }

    /// Index of the first NaN or Inf, if any.
    public func firstNonFinite() -> Int? {
        data.withUnsafeBufferPointer { Self.firstNonFinite($0) }
    }

    /// The index of the first NaN or ±Inf in `p`, or nil.
    public static func firstNonFinite(_ p: UnsafeBufferPointer<Float>) -> Int? {
        let i = sk_first_nonfinite(p.baseAddress, p.count)
        return i < 0 ? nil : Int(i)
    }
}

/// Conversions between stored element bytes and f32.
public enum ElementConversion {
    /// Decodes `count` little-endian elements of `dtype` into `out`.
    public static func decode(_ src: UnsafeRawPointer, dtype: DType, count: Int, into out: UnsafeMutablePointer<Float>) throws {
        switch dtype {
        case .F32:
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .F16:
            for i in 0..<count { out[i] = HalfFloat.f16ToF32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .BF16:
            for i in 0..<count { out[i] = HalfFloat.bf16ToF32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .F64:
            for i in 0..<count { out[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        case .I8:
            for i in 0..<count { out[i] = Float(src.load(fromByteOffset: i, as: Int8.self)) }
        case .U8, .BOOL:
            for i in 0..<count { out[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
        case .I16:
            for i in 0..<count { out[i] = Float(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
        case .U16:
            for i in 0..<count { out[i] = Float(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .I32:
            for i in 0..<count { out[i] = Float(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
        case .U32:
            for i in 0..<count { out[i] = Float(UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .I64:
            for i in 0..<count { out[i] = Float(Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
        case .U64:
            for i in 0..<count { out[i] = Float(UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) }
        case .F8_E4M3, .F8_E5M2:
            throw SinkKitError(.unsupportedDType, "cannot convert \(dtype.rawValue) to f32 (expected F32, F16 or BF16 weights)")
        }
    }

    /// Encodes f32 values as little-endian `dtype` bytes (F32, F16 or BF16 only).
    public static func encode(_ src: UnsafeBufferPointer<Float>, dtype: DType, into out: UnsafeMutableRawPointer) throws {
        switch dtype {
        case .F32:
            for i in 0..<src.count { out.storeBytes(of: src[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        case .F16:
            for i in 0..<src.count { out.storeBytes(of: HalfFloat.f32ToF16(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .BF16:
            for i in 0..<src.count { out.storeBytes(of: HalfFloat.f32ToBF16(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        default:
            throw SinkKitError(.unsupportedDType, "cannot write \(dtype.rawValue): expected F32, F16 or BF16")
        }
    }
}
