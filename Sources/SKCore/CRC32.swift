import SKKernels

/// CRC-32 as in zlib, gzip and PNG (reflected polynomial 0xEDB88320). The SKM format checksums
/// its header and every tensor with it (Formats/SKM.md). The bytes go through SKKernels'
/// `sk_crc32`: carry-less multiply folding (about 11 GB/s here) where the CPU has PCLMULQDQ,
/// else slicing-by-8 (about 2 GB/s).
public struct CRC32 {
    public private(set) var value: UInt32 = 0

    public init() {}

    public mutating func update(_ data: UnsafeRawBufferPointer) {
        guard let base = data.baseAddress, data.count > 0 else { return }
        value = sk_crc32(value, base.assumingMemoryBound(to: UInt8.self), data.count)
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    public static func checksum(_ data: UnsafeRawBufferPointer) -> UInt32 {
        var c = CRC32()
        c.update(data)
        return c.value
    }
}
