import Foundation
import SKCore
import SKGGUF
import SKSafetensors

/// Per-input-column activation statistics of a model's linear layers (`skconv calibrate`): for each
/// weight, the mean square of every input channel over a calibration text. Stored as a safetensors
/// file (`.imatrix`): one F32 vector per weight, named as the weight, and `__metadata__["sinkkit.imatrix"]`
/// (tokens seen, the text's SHA-256, the model). `skconv quantize --imatrix` weights each block's
/// squared error by it. llama.cpp's importance matrices in their GGUF form (`llama-imatrix`:
/// `general.type` "imatrix", `NAME.in_sum2` and `NAME.counts` per weight) are read too: the mean
/// square is in_sum2 / counts, the names become transformers'.
public struct ImportanceMatrix {
    public let path: String
    public let values: [String: [Float]]
    /// The calibration record (JSON text).
    public let provenance: String
    public let sha256: String

    public init(path: String) throws {
        if GGUFFile.isGGUF(path) {
            self = try ImportanceMatrix(llamaCpp: try GGUFFile(path: path))
            return
        }
        let f = try SafetensorsFile(path: path)
        guard let p = f.metadata["sinkkit.imatrix"] else {
            throw SinkKitError(.malformedHeader, "\(path): not a SinkKit importance matrix (no sinkkit.imatrix metadata; make one with skconv calibrate)")
        }
        var v: [String: [Float]] = [:]
        for t in f.tensors {
            guard t.shape.count == 1, t.dtype == .F32 else {
                throw SinkKitError(.shapeMismatch, "\(path): \(t.name) has shape \(t.shape) \(t.dtype.rawValue), expected one F32 vector per weight")
            }
            let x = try f.loadF32(t.name).data
            guard x.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw SinkKitError(.nonFinite, "\(path): \(t.name) has negative or non-finite values (mean squares are ≥ 0)")
            }
            v[t.name] = x
        }
        self.path = path
        values = v
        provenance = p
        sha256 = try SHA256.hexDigest(ofFile: path)
    }

    /// llama.cpp's GGUF importance matrix.
    init(llamaCpp g: GGUFFile) throws {
        let path = g.path
        guard g.metadata["general.type"]?.string == "imatrix" else {
            throw SinkKitError(.malformedHeader, "\(path): a GGUF file, but not an importance matrix (general.type is not \"imatrix\")")
        }
        var v: [String: [Float]] = [:]
        for t in g.tensors where t.name.hasSuffix(".in_sum2") {
            let base = String(t.name.dropLast(".in_sum2".count))
            guard let hf = GGUFNames.transformers(base) else {
                throw SinkKitError(.shapeMismatch, "\(path): \(t.name) is not a weight of a llama model")
            }
            guard t.type == 0, t.ne.count == 1 else {
                throw SinkKitError(.shapeMismatch, "\(path): \(t.name) is \(GGUFFile.typeName(t.type)) \(t.shape); expected one F32 vector (mixtures of experts are not supported)")
            }
            guard let c = g.tensor(base + ".counts"), c.type == 0, c.elementCount == 1 else {
                throw SinkKitError(.shapeMismatch, "\(path): \(base).counts is missing or not one F32 value")
            }
            let count = try g.dequantize(c)[0]
            guard count.isFinite, count > 0 else { throw SinkKitError(.nonFinite, "\(path): \(base).counts is \(count)") }
            let sums = try g.dequantize(t)
            guard sums.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw SinkKitError(.nonFinite, "\(path): \(t.name) has negative or non-finite values (sums of squares are ≥ 0)")
            }
            v[hf] = sums.map { $0 / count }
        }
        guard !v.isEmpty else { throw SinkKitError(.malformedHeader, "\(path): an importance matrix with no NAME.in_sum2 entries") }
        self.path = path
        values = v
        var record: [String: Any] = ["source": "llama.cpp imatrix (GGUF)"]
        if let d = g.metadata["imatrix.datasets"]?.array { record["datasets"] = d.compactMap { $0.string } }
        if let n = g.metadata["imatrix.chunk_count"]?.int { record["chunk_count"] = n }
        if let n = g.metadata["imatrix.chunk_size"]?.int { record["chunk_size"] = n }
        provenance = try JSONWriter.string(record)
        sha256 = try SHA256.hexDigest(ofFile: path)
    }

    /// The importance of each input column of `tensor` (`cols` values), made strictly positive
    /// (a column never seen active still counts a little: 1e-6 of the mean), or nil when the
    /// matrix has no entry for it.
    public func weights(for tensor: String, cols: Int) throws -> [Float]? {
        guard let v = values[tensor] else { return nil }
        guard v.count == cols else {
            throw SinkKitError(.shapeMismatch, "\(path): \(tensor) has \(v.count) values, the weight has \(cols) columns (an importance matrix of another model?)")
        }
        let mean = v.reduce(0, +) / Float(max(1, v.count))
        let floor = max(mean * 1e-6, Float.leastNormalMagnitude)
        return v.map { max($0, floor) }
    }
}
