/// Element types of the safetensors format (names as in the reference implementation).
public enum DType: String, CaseIterable, Sendable {
    case BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64
    case F8_E4M3, F8_E5M2

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .BOOL, .U8, .I8, .F8_E4M3, .F8_E5M2: return 1
        case .I16, .U16, .F16, .BF16: return 2
        case .I32, .U32, .F32: return 4
        case .F64, .I64, .U64: return 8
        }
    }

    /// Floating-point types a LLaMA checkpoint may store its weights in.
    public var isFloatWeight: Bool { self == .F32 || self == .F16 || self == .BF16 }

    /// Parses a dtype name, case-insensitively, as the CLI's `--dtype` accepts it.
    public init?(userName: String) {
        switch userName.lowercased() {
        case "f32", "float32": self = .F32
        case "f16", "float16", "half": self = .F16
        case "bf16", "bfloat16": self = .BF16
        default: return nil
        }
    }

    /// The `torch_dtype` spelling transformers writes into config.json.
    public var torchName: String? {
        switch self {
        case .F32: return "float32"
        case .F16: return "float16"
        case .BF16: return "bfloat16"
        default: return nil
        }
    }
}
