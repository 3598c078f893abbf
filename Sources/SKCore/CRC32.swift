/// CRC-32 as in zlib, gzip and PNG (reflected polynomial 0xEDB88320), slicing-by-8.
/// The SKM format checksums its header and every tensor with it (Formats/SKM.md).
public struct CRC32 {
    public private(set) var value: UInt32 = 0

    /// Eight 256-entry tables, one after another: table k at [256·k, 256·k + 256).
    static let table: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 { t[256 * k + i] = (t[256 * (k - 1) + i] >> 8) ^ t[Int(t[256 * (k - 1) + i] & 0xff)] }
        }
        return t
    }()

    public init() {}

    public mutating func update(_ data: UnsafeRawBufferPointer) {
        guard let base = data.baseAddress else { return }
        var c = ~value
        let n = data.count
        Self.table.withUnsafeBufferPointer { T in
            @inline(__always) func t(_ k: Int, _ b: UInt32) -> UInt32 { T[256 * k + Int(b & 0xff)] }
            var i = 0
            while i + 8 <= n {
                let lo = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt32.self)) ^ c
                let hi = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self))
                c = t(7, lo) ^ t(6, lo >> 8) ^ t(5, lo >> 16) ^ t(4, lo >> 24)
                  ^ t(3, hi) ^ t(2, hi >> 8) ^ t(1, hi >> 16) ^ t(0, hi >> 24)
                i += 8
            }
            while i < n {
                c = t(0, c ^ UInt32(base.load(fromByteOffset: i, as: UInt8.self))) ^ (c >> 8)
                i += 1
            }
        }
        value = ~c
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    public static func checksum(_ data: UnsafeRawBufferPointer) -> UInt32 {
        var c = CRC32()
        c.update(data)
        return c.value
    }
}
