import SKCore

extension SKMValue {
    var typeTag: UInt8 {
        switch self {
        case .bool: return 1
        case .int: return 2
        case .double: return 3
        case .string: return 4
        case .intArray, .doubleArray, .stringArray: return 5
        }
    }
}

/// Little-endian byte assembly for the header.
struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    mutating func str32(_ s: String) { let u = Array(s.utf8); u32(UInt32(u.count)); bytes += u }
    mutating func str16(_ s: String) { let u = Array(s.utf8); u16(UInt16(u.count)); bytes += u }

    mutating func value(_ v: SKMValue) {
        u8(v.typeTag)
        switch v {
        case .bool(let b): u8(b ? 1 : 0)
        case .int(let i): u64(UInt64(bitPattern: i))
        case .double(let d): f64(d)
        case .string(let s): str32(s)
        case .intArray(let a): u8(2); u64(UInt64(a.count)); for i in a { u64(UInt64(bitPattern: i)) }
        case .doubleArray(let a): u8(3); u64(UInt64(a.count)); for d in a { f64(d) }
        case .stringArray(let a): u8(4); u64(UInt64(a.count)); for s in a { str32(s) }
        }
    }
}

/// Bounds-checked little-endian reading of the header; every failure names the file and
/// what was being read.
struct ByteReader {
    let p: UnsafeRawBufferPointer
    var pos: Int
    let end: Int
    let path: String

    func fail(_ what: String) -> SinkKitError {
        SinkKitError(.truncated, "\(path): header ends inside \(what) (byte \(pos) of a \(end)-byte header region)")
    }
    mutating func take(_ n: Int, _ what: String) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= end - pos else { throw fail(what) }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: p[pos..<(pos + n)])
    }
    mutating func u8(_ w: String) throws -> UInt8 { try take(1, w)[0] }
    mutating func u16(_ w: String) throws -> UInt16 { UInt16(littleEndian: try take(2, w).loadUnaligned(as: UInt16.self)) }
    mutating func u32(_ w: String) throws -> UInt32 { UInt32(littleEndian: try take(4, w).loadUnaligned(as: UInt32.self)) }
    mutating func u64(_ w: String) throws -> UInt64 { UInt64(littleEndian: try take(8, w).loadUnaligned(as: UInt64.self)) }
    mutating func int(_ w: String) throws -> Int {
        let v = try u64(w)
        guard v <= UInt64(Int.max) else { throw SinkKitError(.overflow, "\(path): \(w) value \(v) is too large") }
        return Int(v)
    }
    mutating func utf8(_ n: Int, _ w: String) throws -> String {
        guard let s = String(validating: try take(n, w), as: UTF8.self) else {
            throw SinkKitError(.malformedHeader, "\(path): \(w) is not valid UTF-8")
        }
        return s
    }

    mutating func value(_ key: String) throws -> SKMValue {
        let tag = try u8("type of \(key)")
        switch tag {
        case 1: return .bool(try u8(key) != 0)
        case 2: return .int(Int64(bitPattern: try u64(key)))
        case 3: return .double(Double(bitPattern: try u64(key)))
        case 4: return .string(try utf8(Int(try u32(key)), key))
        case 5:
            let et = try u8("element type of \(key)")
            let count = try int("length of \(key)")
            // Each element takes at least 4 bytes: a lying count fails before allocating.
            guard count <= (end - pos) / 4 else { throw fail("array \(key) of \(count) elements") }
            switch et {
            case 2: return .intArray(try (0..<count).map { _ in Int64(bitPattern: try u64(key)) })
            case 3: return .doubleArray(try (0..<count).map { _ in Double(bitPattern: try u64(key)) })
            case 4: return .stringArray(try (0..<count).map { _ in try utf8(Int(try u32(key)), key) })
            default: throw SinkKitError(.malformedHeader, "\(path): metadata \(key) has unknown array element type \(et)")
            }
        default:
            throw SinkKitError(.malformedHeader, "\(path): metadata \(key) has unknown value type \(tag) (expected 1 to 5)")
        }
    }
}
