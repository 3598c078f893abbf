/// Storage types of SKM tensors (Formats/SKM.md, "Tensor encodings"). The block layouts live
/// here, in the bottom floor, so the quantizer that writes them and the kernels that read them
/// cannot drift apart.
public enum QuantType: UInt8, CaseIterable, Sendable {
    case f32 = 0
    case f16 = 1
    case int8 = 2       // f16 d; i8 q[group]; x = d·q
    case int4 = 3       // f16 d; f16 m; u8 qs[group/2]; x = d·q + m
    case int4Sym = 4    // f16 d; u8 qs[group/2]; x = d·(q − 8)

    /// The name users write (`--type`, `--tensor-type`).
    public var userName: String {
        switch self {
        case .f32: return "f32"
        case .f16: return "f16"
        case .int8: return "int8"
        case .int4: return "int4"
        case .int4Sym: return "int4-sym"
        }
    }

    public init?(userName: String) {
        guard let t = QuantType.allCases.first(where: { $0.userName == userName.lowercased() }) else { return nil }
        self = t
    }

    public var isQuantized: Bool { self == .int8 || self == .int4 || self == .int4Sym }

    /// Groups a type accepts.
    public var allowedGroups: [Int] {
        switch self {
        case .f32, .f16: return [0]
        case .int8: return [32]
        case .int4, .int4Sym: return [32, 64, 128]
        }
    }

    public var defaultGroup: Int { isQuantized ? 32 : 0 }

    /// Bytes of one block of `group` elements (element size for f32/f16).
    public func blockBytes(group: Int) -> Int {
        switch self {
        case .f32: return 4
        case .f16: return 2
        case .int8: return 2 + group
        case .int4: return 4 + group / 2
        case .int4Sym: return 2 + group / 2
        }
    }

    /// Bytes of a `rows × cols` tensor; nil when `group` does not divide `cols`.
    public func byteCount(rows: Int, cols: Int, group: Int) -> Int? {
        switch self {
        case .f32, .f16: return rows * cols * blockBytes(group: group)
        default:
            guard group > 0, cols % group == 0 else { return nil }
            return rows * (cols / group) * blockBytes(group: group)
        }
    }

    /// Bits per weight.
    public func bitsPerWeight(group: Int) -> Double {
        isQuantized ? Double(8 * blockBytes(group: group)) / Double(group) : Double(8 * blockBytes(group: group))
    }
}
