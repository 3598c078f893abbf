

/// Block decoding to f32 (`f32(d)·f32(q) + f32(m)`, no fused multiply-add), as the spec says.
public enum Dequantize {
    @inline(__always) static func half(_ p: UnsafeRawPointer, _ at: Int) -> Float {
        Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt16.self))))
    }

    public static func block(_ p: UnsafeRawPointer, type: QuantType, group: Int, into out: UnsafeMutablePointer<Float>) {
        let h = group / 2
        switch type {
        case .int8:
            let d = half(p, 0)
            for j in 0..<group { out[j] = d * Float(p.load(fromByteOffset: 2 + j, as: Int8.self)) }
        case .int4:
            let d = half(p, 0), m = half(p, 2)
            for j in 0..<h {
                let b = p.load(fromByteOffset: 4 + j, as: UInt8.self)
                out[j] = d * Float(b & 0x0f) + m
                out[j + h] = d * Float(b >> 4) + m
            }
        case .int4Sym:
            let d = half(p, 0)
            for j in 0..<h {
                let b = p.load(fromByteOffset: 2 + j, as: UInt8.self)
                out[j] = d * Float(Int(b & 0x0f) - 8)
                out[j + h] = d * Float(Int(b >> 4) - 8)
            }
        case .int5Sym:
            let d = half(p, 0)
            for j in 0..<group {
                let b = p.load(fromByteOffset: 2 + (j % h), as: UInt8.self)
                let lo = Int(j < h ? b & 0x0f : b >> 4)
                let hi = Int((p.load(fromByteOffset: 2 + h + j / 8, as: UInt8.self) >> UInt8(j % 8)) & 1)
                out[j] = d * Float((lo | (hi << 4)) - 16)
            }
        case .f32:
            for j in 0..<group { out[j] = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * j, as: UInt32.self))) }
        case .f16:
            for j in 0..<group { out[j] = half(p, 2 * j) }
        }
    }

    /// Decodes a whole tensor's raw bytes (`rows × cols`) to f32.
    public static func tensor(_ raw: UnsafeRawBufferPointer, type: QuantType, group: Int, rows: Int, cols: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows * cols)
        out.withUnsafeMutableBufferPointer { dst in
            if !type.isQuantized {
                block(raw.baseAddress!, type: type, group: rows * cols, into: dst.baseAddress!)
                return
            }
            let bb = type.blockBytes(group: group)
            for b in 0..<(rows * cols / group) {
                block(raw.baseAddress! + b * bb, type: type, group: group, into: dst.baseAddress! + b * group)
            }
        }
        return out
    }
}
