import SKCore

/// Constants of the SKM layout (Formats/SKM.md).
public enum SKM {
    public static let magic: [UInt8] = [0x53, 0x4B, 0x4D, 0x00, 0x0D, 0x0A, 0x1A, 0x0A]
    public static let major: UInt16 = 1
    public static let minor: UInt16 = 0
    public static let byteOrderTag: UInt32 = 0x0102_0304
    public static let alignment = 64
    public static let fileHeaderSize = 64

    public enum Compression: UInt8 { case none = 0, zstd = 1 }
}

/// One tensor table entry.
public struct SKMTensorInfo: Equatable {
    public var name: String
    public var type: QuantType
    public var compression: SKM.Compression
    public var group: Int
    public var shape: [Int]
    public var offset: Int          // from data_offset
    public var storedBytes: Int
    public var rawBytes: Int
    public var crc32: UInt32

    public init(name: String, type: QuantType, compression: SKM.Compression = .none, group: Int, shape: [Int],
                offset: Int = 0, storedBytes: Int = 0, rawBytes: Int = 0, crc32: UInt32 = 0) {
        self.name = name; self.type = type; self.compression = compression; self.group = group; self.shape = shape
        self.offset = offset; self.storedBytes = storedBytes; self.rawBytes = rawBytes; self.crc32 = crc32
    }

    public var rows: Int { shape.dropLast().reduce(1, *) }
    public var cols: Int { shape.last ?? 1 }
    public var elementCount: Int { shape.reduce(1, *) }

    /// Bytes of the table entry.
    var entryBytes: Int { 2 + name.utf8.count + 4 + 4 + 8 * shape.count + 8 + 8 + 8 + 4 + 4 }

    func encode(into w: inout ByteWriter) {
        w.str16(name)
        w.u8(type.rawValue); w.u8(compression.rawValue); w.u8(UInt8(shape.count)); w.u8(0)
        w.u32(UInt32(group))
        for d in shape { w.u64(UInt64(d)) }
        w.u64(UInt64(offset)); w.u64(UInt64(storedBytes)); w.u64(UInt64(rawBytes))
        w.u32(crc32); w.u32(0)
    }
}
