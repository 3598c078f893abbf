import SKCore

/// Where a stored tensor lives and how it is encoded.
public struct TensorInfo: Equatable, Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let elementCount: Int
    public let byteCount: Int

    public init(name: String, dtype: DType, shape: [Int], elementCount: Int, byteCount: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.elementCount = elementCount
        self.byteCount = byteCount
    }
}

/// Anything that holds named tensors and hands them out one at a time: a safetensors file,
/// a sharded checkpoint, a torch pickle. Readers load lazily; `load` converts to f32.
public protocol TensorSource: AnyObject {
    /// Where the tensors come from, for error messages.
    var sourceDescription: String { get }
    /// Tensor names in a stable order.
    var tensorNames: [String] { get }
    func info(_ name: String) -> TensorInfo?
    /// Loads a tensor as f32. Implementations release the mapped pages they read, so walking
    /// a checkpoint keeps about one tensor resident.
    func loadF32(_ name: String) throws -> Tensor
}

extension TensorSource {
    public func contains(_ name: String) -> Bool { info(name) != nil }

    public func require(_ name: String) throws -> TensorInfo {
        guard let i = info(name) else {
            throw SinkKitError(.shapeMismatch, "\(sourceDescription): tensor \(name) is missing")
        }
        return i
    }
}
