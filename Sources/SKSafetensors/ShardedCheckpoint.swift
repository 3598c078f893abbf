import Foundation
import SKCore

/// The weights of a Hugging Face model directory: `model.safetensors`, or the shards listed
/// by `model.safetensors.index.json` (`{"weight_map": {tensor: shard file}}`). Every tensor
/// named in the index must be in the shard it names.
public final class ShardedCheckpoint: TensorSource {
    public let directory: String
    public let shards: [SafetensorsFile]
    private let owner: [String: SafetensorsFile]
    public let tensorNames: [String]

    public static let indexName = "model.safetensors.index.json"
    public static let singleName = "model.safetensors"

    public var sourceDescription: String { directory }
    public func info(_ name: String) -> TensorInfo? { owner[name]?.info(name) }

    public init(directory: String) throws {
        self.directory = directory
        let fm = FileManager.default
        let indexPath = directory + "/" + Self.indexName
        let singlePath = directory + "/" + Self.singleName
        if fm.fileExists(atPath: indexPath) {
            let data = try InputFile.read(indexPath, limit: Limits.maxJSONFileBytes)
            try StrictJSON.validate(data, path: indexPath)
            struct Index: Decodable { let weight_map: [String: String] }
            let index: Index
            do { index = try JSONDecoder().decode(Index.self, from: data) } catch {
                throw SinkKitError(.malformedHeader, "\(indexPath): not a valid shard index (\(SafetensorsFile.describe(error)))")
            }
            var files: [String: SafetensorsFile] = [:]
            var owner: [String: SafetensorsFile] = [:]
            for shardName in Set(index.weight_map.values).sorted() {
                guard !shardName.contains("/"), !shardName.hasPrefix(".") else {
                    throw SinkKitError(.malformedHeader, "\(indexPath): shard name \(shardName) must be a plain file name in the model directory")
                }
                files[shardName] = try SafetensorsFile(path: directory + "/" + shardName)
            }
            for (tensor, shardName) in index.weight_map {
                let f = files[shardName]!
                guard f.info(tensor) != nil else {
                    throw SinkKitError(.shapeMismatch, "\(indexPath): tensor \(tensor) is mapped to \(shardName), which does not contain it")
                }
                owner[tensor] = f
            }
            self.shards = files.keys.sorted().map { files[$0]! }
            self.owner = owner
        } else if fm.fileExists(atPath: singlePath) {
            let f = try SafetensorsFile(path: singlePath)
            self.shards = [f]
            self.owner = Dictionary(uniqueKeysWithValues: f.tensorNames.map { ($0, f) })
        } else {
            throw SinkKitError(.io, "\(directory): no \(Self.singleName) or \(Self.indexName) (expected a Hugging Face model directory with safetensors weights)")
        }
        tensorNames = owner.keys.sorted()
    }

    public func loadF32(_ name: String) throws -> Tensor {
        guard let f = owner[name] else { throw SinkKitError(.shapeMismatch, "\(directory): no tensor named \(name)") }
        return try f.loadF32(name)
    }

    /// The file holding a tensor, for raw access.
    public func file(for name: String) -> SafetensorsFile? { owner[name] }
}
