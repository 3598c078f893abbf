import SKCore

/// The stored (uncompressed) entries of a zip archive, as `torch.save` writes them since
/// torch 1.6: found through the central directory (zip64 included), every offset checked.
public struct ZipArchive {
    public struct Entry {
        public let name: String
        public let dataOffset: Int
        public let size: Int
    }

    public let file: MappedFile
    public let entries: [String: Entry]

    public init(file: MappedFile) throws {
        self.file = file
        let path = file.path
        func u16(_ o: Int) throws -> Int { Int(UInt16(littleEndian: try file.bytes(offset: o, count: 2).loadUnaligned(as: UInt16.self))) }
        func u32(_ o: Int) throws -> Int { Int(UInt32(littleEndian: try file.bytes(offset: o, count: 4).loadUnaligned(as: UInt32.self))) }
        func u64(_ o: Int) throws -> Int {
            let v = UInt64(littleEndian: try file.bytes(offset: o, count: 8).loadUnaligned(as: UInt64.self))
            guard v <= UInt64(Int.max) else { throw SinkKitError(.overflow, "\(path): zip field \(v) too large") }
            return Int(v)
        }
        guard file.size >= 22 else { throw SinkKitError(.truncated, "\(path): \(file.size) bytes is too short for a zip archive") }
        var eocd = -1
        var p = file.size - 22
        let lowest = max(0, file.size - 22 - 65535)
        while p >= lowest {
            if try u32(p) == 0x0605_4b50 { eocd = p; break }
            p -= 1
        }
        guard eocd >= 0 else { throw SinkKitError(.pickle, "\(path): no zip end-of-central-directory record (not a torch.save zip archive, or truncated)") }
        var count = try u16(eocd + 10)
        var cdOffset = try u32(eocd + 16)
        if count == 0xFFFF || cdOffset == 0xFFFF_FFFF {
            // zip64: a locator sits right before the classic record.
            guard eocd >= 20, try u32(eocd - 20) == 0x0706_4b50 else {
                throw SinkKitError(.pickle, "\(path): zip64 sizes without a zip64 locator")
            }
            let rec = try u64(eocd - 20 + 8)
            guard try u32(rec) == 0x0606_4b50 else { throw SinkKitError(.pickle, "\(path): bad zip64 end-of-central-directory record") }
            count = try u64(rec + 32)
            cdOffset = try u64(rec + 48)
        }
        var entries: [String: Entry] = [:]
        var q = cdOffset
        for _ in 0..<count {
            guard try u32(q) == 0x0201_4b50 else { throw SinkKitError(.pickle, "\(path): corrupt zip central directory at byte \(q)") }
            let method = try u16(q + 10)
            var csize = try u32(q + 20)
            var usize = try u32(q + 24)
            let nameLen = try u16(q + 28), extraLen = try u16(q + 30), commentLen = try u16(q + 32)
            var local = try u32(q + 42)
            let nameBytes = try file.bytes(offset: q + 46, count: nameLen)
            let name = String(decoding: nameBytes, as: UTF8.self)
            // zip64 extra field: the 0xFFFFFFFF fields, in order.
            var e = q + 46 + nameLen
            let extraEnd = e + extraLen
            while e + 4 <= extraEnd {
                let id = try u16(e), len = try u16(e + 2)
                if id == 0x0001 {
                    var f = e + 4
                    if usize == 0xFFFF_FFFF { usize = try u64(f); f += 8 }
                    if csize == 0xFFFF_FFFF { csize = try u64(f); f += 8 }
                    if local == 0xFFFF_FFFF { local = try u64(f); f += 8 }
                }
                e += 4 + len
            }
            guard method == 0, csize == usize else {
                throw SinkKitError(.pickle, "\(path): zip entry \(name) is compressed (method \(method)); torch.save stores entries uncompressed")
            }
            guard try u32(local) == 0x0403_4b50 else { throw SinkKitError(.pickle, "\(path): zip entry \(name) has no local header at byte \(local)") }
            let dataOffset = local + 30 + (try u16(local + 26)) + (try u16(local + 28))
            _ = try file.bytes(offset: dataOffset, count: usize) // bounds check now, not at first use
            entries[name] = Entry(name: name, dataOffset: dataOffset, size: usize)
            q += 46 + nameLen + extraLen + commentLen
        }
        self.entries = entries
    }

    public func data(_ entry: Entry) throws -> UnsafeRawBufferPointer {
        try file.bytes(offset: entry.dataOffset, count: entry.size)
    }
}
