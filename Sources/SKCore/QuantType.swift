/// Storage types of SKM tensors (Formats/SKM.md, "Tensor encodings"). The block layouts live
/// here, in the bottom floor, so the quantizer that writes them and the kernels that read them
/// cannot drift apart.
public enum QuantType: UInt8, CaseIterable, Sendable {
    case f32 = 0
    case f16 = 1
    case int8 = 2       // f16 d; i8 q[group]; x = d·q
    case int4 = 3       // f16 d; f16 m; u8 qs[group/2]; x = d·q + m
    case int4Sym = 4    // f16 d; u8 qs[group/2]; x = d·(q − 8)
    case int5Sym = 5    // f16 d; u8 qs[group/2] (low 4 bits); u8 qh[group/8] (5th bits); x = d·(q − 16)

    /// The name users write (`--type`, `--tensor-type`).
    public var userName: String {
        switch self {
        case .f32: return "f32"
        case .f16: return "f16"
        case .int8: return "int8"
        case .int4: return "int4"
        case .int4Sym: return "int4-sym"
        case .int5Sym: return "int5-sym"
        }
    }

    public init?(userName: String) {
        let n = userName.lowercased()
        guard let t = QuantType.allCases.first(where: { $0.userName == n }) ?? Self.llamaCppAliases[n] else { return nil }
        self = t
    }

    /// llama.cpp's type names whose blocks mean the same as an SKM type (32 weights, the same
    /// arithmetic): Q8_0 is int8 (x = d·q), Q4_0 is int4-sym (x = d·(q − 8)), Q4_1 is int4
    /// (x = d·q + m), Q5_0 is int5-sym (x = d·(q − 16)); F16/F32 are themselves.
    public static let llamaCppAliases: [String: QuantType] = ["q8_0": .int8, "q4_0": .int4Sym, "q4_1": .int4, "q5_0": .int5Sym]

    /// A `--type`/`--tensor-type` name: an SKM type or a llama.cpp alias; other llama.cpp types
    /// (K-quants, 5-bit, i-quants, BF16) are refused by name, with the nearest SKM type. `flag`
    /// starts the message (`--type`, `--tensor-type down_proj=q4_k`).
    public static func parse(_ name: String, flag: String) throws -> QuantType {
        if let t = QuantType(userName: name) { return t }
        let n = name.lowercased()
        let names = "f32, f16, int8, int5-sym, int4, int4-sym, mixed (or llama.cpp's q8_0, q5_0, q4_0, q4_1)"
        if n.hasPrefix("q") && n.contains("_k") || n.hasPrefix("iq") || ["q5_1", "q6_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_k", "tq1_0", "tq2_0", "mxfp4"].contains(n) {
            throw SinkKitError(.invalidArgument, "\(flag): llama.cpp's \(name.uppercased()) has no SKM equivalent (SKM stores 32-weight blocks of int8, int5-sym, int4 or int4-sym); for Q4_K_M's size and better quality use --type mixed with --imatrix, for 5.5 bits int5-sym, for 8.5 bits int8; expected \(names)")
        }
        if n == "bf16" {
            throw SinkKitError(.invalidArgument, "\(flag): bf16 is not an SKM type; SKM stores f16 or f32 (bf16 weights convert to f32 exactly); expected \(names)")
        }
        throw SinkKitError(.invalidArgument, "\(flag): unknown type \(name); expected \(names)")
    }

    public var isQuantized: Bool { self == .int8 || self == .int4 || self == .int4Sym || self == .int5Sym }

    /// Groups a type accepts.
    public var allowedGroups: [Int] {
        switch self {
        case .f32, .f16: return [0]
        case .int8: return [32]
        case .int4, .int4Sym, .int5Sym: return [32, 64, 128]
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
        case .int5Sym: return 2 + group / 2 + group / 8
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
