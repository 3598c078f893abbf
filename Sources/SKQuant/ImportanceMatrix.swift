import Foundation
import SKCore
import SKSafetensors

/// Per-input-column activation statistics of a model's linear layers (`skconv calibrate`): for each
/// weight, the mean square of every input channel over a calibration text. Stored as a safetensors
/// file (`.imatrix`): one F32 vector per weight, named as the weight, and `__metadata__["sinkkit.imatrix"]`
/// (tokens seen, the text's SHA-256, the model). `skconv quantize --imatrix` weights each block's
/// squared error by it.
public struct ImportanceMatrix {
    public let path: String
    public let values: [String: [Float]]
    /// The calibration record (JSON text).
    public let provenance: String
    public let sha256: String

    public init(path: String) throws {
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
