/// IEEE half and bfloat16 conversions. Float16 -> Float is exact; Float -> Float16 and
/// Float -> BFloat16 round to nearest, ties to even (as torch's `.to(dtype)` does).
public enum HalfFloat {
    @inline(__always)
    public static func f16ToF32(_ bits: UInt16) -> Float {
        Float(Float16(bitPattern: bits))
    }

    @inline(__always)
    public static func f32ToF16(_ x: Float) -> UInt16 {
        Float16(x).bitPattern
    }

    @inline(__always)
    public static func bf16ToF32(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    @inline(__always)
    public static func f32ToBF16(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: (u >> 16) | 0x40) } // keep it a quiet NaN
        let rounding: UInt32 = 0x7FFF + ((u >> 16) & 1)
        return UInt16(truncatingIfNeeded: (u &+ rounding) >> 16)
    }
}
