import SKKernels

/// SHA-256 (FIPS 180-4), streaming. Used for provenance: the hash of every adapter and
/// parameter file that went into a merged model is recorded in its metadata.
public struct SHA256 {
    private var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    private var pending = [UInt8]()
    private var length: UInt64 = 0

    public init() {}

    public mutating func update(_ data: UnsafeRawBufferPointer) {
        length &+= UInt64(data.count)
        var i = 0
        if !pending.isEmpty {
            while i < data.count && pending.count < 64 { pending.append(data[i]); i += 1 }
            if pending.count == 64 {
                pending.withUnsafeBytes { compress($0.baseAddress!, blocks: 1) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        let blocks = (data.count - i) / 64
        if blocks > 0 {
            compress(data.baseAddress! + i, blocks: blocks)
            i += blocks * 64
        }
        while i < data.count { pending.append(data[i]); i += 1 }
    }

    public mutating func update<S: Sequence>(bytes: S) where S.Element == UInt8 {
        let a = Array(bytes)
        a.withUnsafeBytes { update($0) }
    }

    public mutating func finalize() -> [UInt8] {
        let bitLength = length &* 8
        var tail: [UInt8] = [0x80]
        while (pending.count + tail.count) % 64 != 56 { tail.append(0) }
        for s in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(s))) }
        let savedLength = length
        tail.withUnsafeBytes { update($0) }
        length = savedLength
        precondition(pending.isEmpty)
        var out = [UInt8]()
        for w in h {
            out += [UInt8(w >> 24), UInt8((w >> 16) & 0xff), UInt8((w >> 8) & 0xff), UInt8(w & 0xff)]
        }
        return out
    }

    public static func hex(_ digest: [UInt8]) -> String {
        digest.map { b in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }

    /// Hex digest of a whole file, read through its mapping.
    public static func hexDigest(ofFile path: String) throws -> String {
        try hexDigest(ofFile: path, unless: { false })!
    }

    /// The digest of a file, or nil once `stop()` (asked between 8 MiB chunks) returns true.
    public static func hexDigest(ofFile path: String, unless stop: () -> Bool) throws -> String? {
        let f = try MappedFile(path: path)
        var s = SHA256()
        var off = 0
        let chunk = 8 << 20
        while off < f.size {
            if stop() { return nil }
            let n = min(chunk, f.size - off)
            s.update(try f.bytes(offset: off, count: n))
            f.release(offset: off, count: n)
            off += n
        }
        return hex(s.finalize())
    }

    /// The block compression runs in C (SKKernels): SHA-NI where the CPU has it, else scalar.
    private mutating func compress(_ p: UnsafeRawPointer, blocks: Int) {
        h.withUnsafeMutableBufferPointer { sk_sha256_blocks($0.baseAddress!, p.assumingMemoryBound(to: UInt8.self), blocks) }
    }
}
