/// A typed metadata value of an SKM file (Formats/SKM.md, "Metadata entry"); it lives in the
/// bottom floor so that the model description, which writes and reads these keys, needs no file format.
public enum SKMValue: Equatable, Sendable {
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case intArray([Int64])
    case doubleArray([Double])
    case stringArray([String])

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var int: Int64? { if case .int(let i) = self { return i }; return nil }
    public var double: Double? { if case .double(let d) = self { return d }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var stringArray: [String]? { if case .stringArray(let a) = self { return a }; return nil }
    public var intArray: [Int64]? { if case .intArray(let a) = self { return a }; return nil }
}

