import CZstd
import SKCore

/// A mapped SKM file, validated on open (Formats/SKM.md "Rules a reader checks"): magic,
/// major version, byte order, sizes, header checksum, metadata and table bounds, every tensor's
/// size, alignment and place (no overlap, nothing outside the data section). Tensor checksums are
/// checked by `verify()` (or on open with `verify: true`).
public final class SKMFile {
    public let path: String
    public let file: MappedFile
    public let major: UInt16
    public let minor: UInt16
    public let dataOffset: Int
    public let dataSize: Int
    /// The header's CRC-32 (FileHeader `header_crc32`).
    public let headerCRC: UInt32
    public private(set) var metadata: [String: SKMValue]
    public let metadataKeys: [String]
    public let tensors: [SKMTensorInfo]
    private let index: [String: Int]

    public convenience init(path: String, verify: Bool = false) throws {
        try self.init(file: try MappedFile(path: path), verify: verify)
    }

    public init(file: MappedFile, verify: Bool = false) throws {
        let path = file.path
        self.path = path
        self.file = file
        guard file.size >= SKM.fileHeaderSize else {
            throw SinkKitError(.truncated, "\(path): \(file.size) bytes is too short for an SKM file (the header alone is 64 bytes)")
        }
        let all = try file.bytes(offset: 0, count: file.size)
        guard Array(all[0..<8]) == SKM.magic else {
            throw SinkKitError(.malformedHeader, "\(path): bad magic (not an SKM file; expected 53 4B 4D 00 0D 0A 1A 0A)")
        }
        var h = ByteReader(p: all, pos: 8, end: SKM.fileHeaderSize, path: path)
        major = try h.u16("major"); minor = try h.u16("minor")
        guard major == SKM.major else {
            throw SinkKitError(.malformedHeader, "\(path): this file is SKM \(major).\(minor); this reader understands \(SKM.major).x (upgrade SinkKit, or re-convert the model)")
        }
        let bo = try h.u32("byte order")
        guard bo == SKM.byteOrderTag else {
            throw SinkKitError(.malformedHeader, "\(path): byte-order tag 0x\(String(bo, radix: 16)) (expected 0x1020304: a little-endian SKM file)")
        }
        let headerSize = try h.int("header_size"), dataOffset = try h.int("data_offset"), dataSize = try h.int("data_size")
        let metaCount = Int(try h.u32("metadata_count")), tensorCount = Int(try h.u32("tensor_count"))
        let alignment = Int(try h.u32("alignment"))
        let flags = try h.u32("flags")
        let headerCRC = try h.u32("header_crc32")
        let reserved = try h.u32("reserved")
        guard alignment == SKM.alignment else { throw SinkKitError(.malformedHeader, "\(path): alignment \(alignment), expected 64") }
        guard flags & ~1 == 0 else { throw SinkKitError(.malformedHeader, "\(path): flags 0x\(String(flags, radix: 16)) has bits other than bit 0 set (they must be 0)") }
        guard reserved == 0 else { throw SinkKitError(.malformedHeader, "\(path): the reserved header field at byte 60 is 0x\(String(reserved, radix: 16)), must be 0") }
        guard headerSize <= file.size - SKM.fileHeaderSize else {
            throw SinkKitError(.truncated, "\(path): header claims \(headerSize) bytes but the file has \(file.size - SKM.fileHeaderSize) after the fixed header (truncated?)")
        }
        guard dataOffset % SKM.alignment == 0, dataOffset >= SKM.fileHeaderSize + headerSize else {
            throw SinkKitError(.layout, "\(path): data_offset \(dataOffset) is not 64-aligned after the \(headerSize)-byte header")
        }
        let (end, o) = dataOffset.addingReportingOverflow(dataSize)
        guard !o, end == file.size else {
            throw SinkKitError(.truncated, "\(path): the data section should end at byte \(o ? -1 : end) but the file has \(file.size) bytes (truncated or padded)")
        }
        var crc = CRC32()
        crc.update(UnsafeRawBufferPointer(rebasing: all[0..<56]))
        crc.update(UnsafeRawBufferPointer(rebasing: all[SKM.fileHeaderSize..<(SKM.fileHeaderSize + headerSize)]))
        guard crc.value == headerCRC else {
            throw SinkKitError(.checksum, "\(path): header checksum mismatch (stored 0x\(String(headerCRC, radix: 16)), computed 0x\(String(crc.value, radix: 16))): the header is corrupt")
        }
        self.dataOffset = dataOffset
        self.dataSize = dataSize
        self.headerCRC = headerCRC
        // The padding between the header and the data section is zero (no byte of the file goes unchecked).
        if let at = Self.firstNonZero(all, from: SKM.fileHeaderSize + headerSize, to: dataOffset) {
            throw SinkKitError(.malformedHeader, "\(path): byte \(at), in the padding before the data section, is not zero (the file is corrupt)")
        }

        var r = ByteReader(p: all, pos: SKM.fileHeaderSize, end: SKM.fileHeaderSize + headerSize, path: path)
        var meta: [String: SKMValue] = [:], keys: [String] = []
        for _ in 0..<metaCount {
            let key = try r.utf8(Int(try r.u16("metadata key length")), "metadata key")
            guard meta[key] == nil else { throw SinkKitError(.malformedHeader, "\(path): duplicate metadata key \(key)") }
            meta[key] = try r.value(key)
            keys.append(key)
        }
        var tensors: [SKMTensorInfo] = []
        var index: [String: Int] = [:]
        for _ in 0..<tensorCount {
            let name = try r.utf8(Int(try r.u16("tensor name length")), "tensor name")
            let tcode = try r.u8(name), ccode = try r.u8(name), ndim = Int(try r.u8(name))
            guard try r.u8(name) == 0 else { throw SinkKitError(.malformedHeader, "\(path): tensor \(name): the reserved byte after ndim must be 0") }
            let group = Int(try r.u32(name))
            guard let type = QuantType(rawValue: tcode) else {
                throw SinkKitError(.unsupportedDType, "\(path): tensor \(name) has unknown qtype \(tcode) (this reader knows 0 to 4)")
            }
            guard let comp = SKM.Compression(rawValue: ccode) else {
                throw SinkKitError(.malformedHeader, "\(path): tensor \(name) has unknown compression \(ccode)")
            }
            guard (1...4).contains(ndim) else { throw SinkKitError(.malformedHeader, "\(path): tensor \(name) has \(ndim) dimensions (1 to 4 allowed)") }
            let shape = try (0..<ndim).map { _ in try r.int("\(name) dims") }
            let offset = try r.int("\(name) offset"), stored = try r.int("\(name) stored_bytes"), raw = try r.int("\(name) raw_bytes")
            let tcrc = try r.u32(name)
            guard try r.u32(name) == 0 else { throw SinkKitError(.malformedHeader, "\(path): tensor \(name): reserved2 must be 0") }
            guard type.allowedGroups.contains(group) else {
                throw SinkKitError(.malformedHeader, "\(path): tensor \(name): group \(group) is not valid for \(type.userName) (allowed: \(type.allowedGroups))")
            }
            let count = try Checked.elementCount(shape, "\(path): tensor \(name) shape")
            _ = try Checked.mul(count, 4, "\(path): tensor \(name) size")   // so byteCount below cannot overflow
            let rows = shape.count == 1 ? 1 : count / max(1, shape.last!)
            guard let expect = type.byteCount(rows: rows, cols: shape.last!, group: group), shape.last! > 0 || count == 0 else {
                throw SinkKitError(.layout, "\(path): tensor \(name): group \(group) does not divide the row length \(shape.last!)")
            }
            guard raw == expect else {
                throw SinkKitError(.layout, "\(path): tensor \(name): raw_bytes \(raw), but \(type.userName) \(shape) group \(group) needs \(expect)")
            }
            guard comp == .zstd || stored == raw else {
                throw SinkKitError(.layout, "\(path): tensor \(name) is uncompressed but stores \(stored) of \(raw) bytes")
            }
            // A compressed tensor's raw size is bounded by its stored size: a few bytes may not claim gigabytes.
            let rawLimit = max(1 << 20, try Checked.mul(stored, Limits.maxCompressionRatio, name))
            guard comp == .none || raw <= rawLimit else {
                throw SinkKitError(.layout, "\(path): tensor \(name) claims \(raw) bytes from \(stored) compressed bytes (more than \(Limits.maxCompressionRatio)×)")
            }
            guard offset % SKM.alignment == 0 else { throw SinkKitError(.layout, "\(path): tensor \(name) offset \(offset) is not 64-byte aligned") }
            let (tend, ov) = offset.addingReportingOverflow(stored)
            guard !ov, tend <= dataSize else {
                throw SinkKitError(.layout, "\(path): tensor \(name) [\(offset), \(ov ? -1 : tend)) lies outside the \(dataSize)-byte data section")
            }
            guard index[name] == nil else { throw SinkKitError(.malformedHeader, "\(path): duplicate tensor \(name)") }
            index[name] = tensors.count
            tensors.append(SKMTensorInfo(name: name, type: type, compression: comp, group: group, shape: shape,
                                         offset: offset, storedBytes: stored, rawBytes: raw, crc32: tcrc))
        }
        guard r.pos == r.end else {
            throw SinkKitError(.malformedHeader, "\(path): \(r.end - r.pos) unexplained bytes after the tensor table")
        }
        let byOffset = tensors.sorted { ($0.offset, $0.storedBytes) < ($1.offset, $1.storedBytes) }
        for (a, b) in zip(byOffset, byOffset.dropFirst()) where a.offset + a.storedBytes > b.offset {
            throw SinkKitError(.layout, "\(path): tensors \(a.name) and \(b.name) overlap")
        }
        guard (flags & 1 == 1) == tensors.contains(where: { $0.compression == .zstd }) else {
            throw SinkKitError(.malformedHeader, "\(path): flags bit 0 says \(flags & 1 == 1 ? "some" : "no") tensor is compressed; the table disagrees")
        }
        metadata = meta
        metadataKeys = keys
        self.tensors = tensors
        self.index = index
        if verify { try self.verify() }
        // Everything in the header is parsed into copies: drop its pages (a vocabulary and merges
        // take megabytes) so they do not stay resident for the life of the mapping.
        file.release(offset: 0, count: dataOffset)
    }

    /// Forgets the values of `keys` (a runtime that has built its tokenizer from the vocabulary
    /// and merges need not keep a second copy of them); `metadataKeys` still lists every key.
    public func dropMetadata(_ keys: [String]) {
        for k in keys { metadata[k] = nil }
    }

    public func info(_ name: String) -> SKMTensorInfo? { index[name].map { tensors[$0] } }

    /// The stored bytes of a tensor, straight from the mapping.
    public func storedBytes(_ t: SKMTensorInfo) throws -> UnsafeRawBufferPointer {
        try file.bytes(offset: dataOffset + t.offset, count: t.storedBytes)
    }

    /// Checks every tensor's CRC-32 and that every byte of the data section outside the tensors
    /// (the padding between them) is zero; the first mismatch is an error naming the tensor or byte.
    /// Each tensor's pages are released once checked (`release`), so a verified file is not left
    /// resident.
    public func verify(release: Bool = false, progress: ((Int, Int) -> Void)? = nil) throws {
        for (i, t) in tensors.enumerated() {
            try verify(t)
            if release { file.release(offset: dataOffset + t.offset, count: t.storedBytes) }
            progress?(i + 1, tensors.count)
        }
        let all = try file.bytes(offset: 0, count: file.size)
        var cursor = dataOffset
        for t in tensors.sorted(by: { $0.offset < $1.offset }) {
            if let at = Self.firstNonZero(all, from: cursor, to: dataOffset + t.offset) {
                throw SinkKitError(.checksum, "\(path): byte \(at), in the padding before tensor \(t.name), is not zero: the file is corrupt")
            }
            cursor = max(cursor, dataOffset + t.offset + t.storedBytes)
        }
        if let at = Self.firstNonZero(all, from: cursor, to: file.size) {
            throw SinkKitError(.checksum, "\(path): byte \(at), after the last tensor, is not zero: the file is corrupt")
        }
    }

    static func firstNonZero(_ p: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        guard from < to else { return nil }
        for i in from..<to where p[i] != 0 { return i }
        return nil
    }

    /// Checks one tensor's CRC-32.
    public func verify(_ t: SKMTensorInfo) throws {
        let c = CRC32.checksum(try storedBytes(t))
        guard c == t.crc32 else {
            throw SinkKitError(.checksum, "\(path): tensor \(t.name): checksum mismatch (stored 0x\(String(t.crc32, radix: 16)), computed 0x\(String(c, radix: 16))): the file is corrupt")
        }
    }

    /// A tensor's raw bytes: the mapping itself when stored uncompressed, else a decompressed copy.
    public func withRawBytes<R>(_ t: SKMTensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let stored = try storedBytes(t)
        if t.compression == .none { return try body(stored) }
        var out = [UInt8](repeating: 0, count: t.rawBytes)
        try out.withUnsafeMutableBytes { try decompress(t, into: $0) }
        return try out.withUnsafeBytes(body)
    }

    /// Decompresses a zstd-stored tensor into `out` (exactly `rawBytes` bytes).
    public func decompress(_ t: SKMTensorInfo, into out: UnsafeMutableRawBufferPointer) throws {
        let stored = try storedBytes(t)
        guard t.compression == .zstd, out.count == t.rawBytes else {
            throw SinkKitError(.invalidArgument, "\(path): tensor \(t.name) is not a compressed tensor of \(out.count) bytes")
        }
        let declared = stored.count > 0 ? ZSTD_getFrameContentSize(stored.baseAddress, stored.count) : 0
        guard declared == UInt64(t.rawBytes) else {
            throw SinkKitError(.layout, "\(path): tensor \(t.name): its zstd frame declares \(declared > UInt64(Int64.max) ? "no or an invalid" : "\(declared)") content size, the table says \(t.rawBytes) bytes")
        }
        let n = ZSTD_decompress(out.baseAddress, out.count, stored.baseAddress, stored.count)
        guard ZSTD_isError(n) == 0, n == t.rawBytes else {
            let why = ZSTD_isError(n) != 0 ? String(cString: ZSTD_getErrorName(n)) : "\(n) bytes instead of \(t.rawBytes)"
            throw SinkKitError(.layout, "\(path): tensor \(t.name): zstd decompression failed (\(why))")
        }
    }
}
