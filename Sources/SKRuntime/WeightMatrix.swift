import SKCore
import SKFormat
import SKKernels

/// A weight tensor as the kernels read it: rows of SKM blocks, straight from the mapping (or
/// from a decompressed copy when the file stores it zstd-compressed). Never expanded to f32.
public final class WeightMatrix {
    public let name: String
    public let type: QuantType
    public let group: Int
    public let rows: Int
    public let cols: Int
    public let rowBytes: Int
    public let base: UnsafeRawPointer
    let owned: [UInt8]?     // decompressed data, when the file stores it compressed

    init(file: SKMFile, info t: SKMTensorInfo) throws {
        name = t.name
        type = t.type
        group = t.group
        rows = t.rows
        cols = t.cols
        rowBytes = t.type.isQuantized ? (t.cols / t.group) * t.type.blockBytes(group: t.group) : t.cols * t.type.blockBytes(group: 0)
        if t.compression == .zstd {
            let copy = try file.withRawBytes(t) { Array($0) }
            owned = copy
            base = copy.withUnsafeBytes { UnsafeRawPointer($0.baseAddress!) }  // kept alive by `owned`
        } else {
            owned = nil
            base = try file.storedBytes(t).baseAddress ?? UnsafeRawPointer(bitPattern: 64)!
        }
        if t.type.isQuantized && t.cols % 32 != 0 {
            throw SinkKitError(.layout, "\(file.path): \(t.name) rows of \(t.cols) are not a multiple of 32")
        }
    }

    @inline(__always) public func row(_ r: Int) -> UnsafeRawPointer { base + r * rowBytes }

    /// One row as f32 (token embedding lookup).
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        if type.isQuantized {
            let bb = type.blockBytes(group: group)
            for b in 0..<(cols / group) { Dequantize.block(row(r) + b * bb, type: type, group: group, into: out + b * group) }
        } else {
            Dequantize.block(row(r), type: type, group: cols, into: out)
        }
    }
}
