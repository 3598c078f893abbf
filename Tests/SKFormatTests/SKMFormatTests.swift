import Foundation
import SKTestSupport
import XCTest
import SKCore
import SKFormat
import SKQuant

/// SKM writer/reader round trips and one test per reader rule (Formats/SKM.md).
final class SKMFormatTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = Fixture.scratch() }

    let metadata: [(String, SKMValue)] = [
        ("a.bool", .bool(true)), ("a.int", .int(-42)), ("a.double", .double(0.125)), ("a.string", .string("héllo\n")),
        ("a.ints", .intArray([1, -2, 3])), ("a.doubles", .doubleArray([1.5])), ("a.strings", .stringArray(["Ġthe", "", "日本"])),
    ]

    /// Writes a small file: an f32 vector, an int8 and an int4 matrix.
    func writeSample(_ name: String = "s.skm", compress: Bool = false) throws -> String {
        let path = dir + "/" + name
        let tensors = [SKMTensorInfo(name: "norm", type: .f32, group: 0, shape: [4]),
                       SKMTensorInfo(name: "w8", type: .int8, group: 32, shape: [2, 64]),
                       SKMTensorInfo(name: "w4", type: .int4, group: 64, shape: [3, 128])]
        let w = try SKMWriter(path: path, metadata: metadata, tensors: tensors, compressionLevel: compress ? 3 : nil)
        let norm: [Float] = [1, 2, 3, 4]
        try norm.withUnsafeBytes { try w.write(name: "norm", raw: $0) }
        for t in tensors.dropFirst() {
            let x = (0..<(t.rows * t.cols)).map { i in Float(sin(Double(i) * 0.37)) * (i % 7 == 0 ? 0 : 1) }
            var out = [UInt8](repeating: 0, count: t.type.byteCount(rows: t.rows, cols: t.cols, group: t.group)!)
            _ = try x.withUnsafeBufferPointer { s in try out.withUnsafeMutableBytes { try BlockQuantizer.quantize(s, rows: t.rows, cols: t.cols, type: t.type, group: t.group, into: $0) } }
            try out.withUnsafeBytes { try w.write(name: t.name, raw: $0) }
        }
        try w.finish()
        return path
    }

    func testRoundTripMetadataTensorsAndAlignment() throws {
        for compress in [false, true] {
            let f = try SKMFile(path: try writeSample(compress ? "z.skm" : "s.skm", compress: compress), verify: true)
            for (k, v) in metadata { XCTAssertEqual(f.metadata[k], v, k) }
            XCTAssertEqual(f.metadataKeys, metadata.map(\.0))
            XCTAssertEqual(f.tensors.map(\.name), ["norm", "w8", "w4"])
            XCTAssertEqual(f.dataOffset % 64, 0)
            for t in f.tensors { XCTAssertEqual(t.offset % 64, 0) }
            let norm = try f.withRawBytes(f.info("norm")!) { Dequantize.tensor($0, type: .f32, group: 0, rows: 1, cols: 4) }
            XCTAssertEqual(norm, [1, 2, 3, 4])
            let w4 = f.info("w4")!
            XCTAssertEqual(w4.rawBytes, 3 * 2 * (4 + 32))
            let v = try f.withRawBytes(w4) { Dequantize.tensor($0, type: .int4, group: 64, rows: 3, cols: 128) }
            XCTAssertEqual(Double(v[1]), sin(0.37), accuracy: 0.08)
        }
    }

    func testWriterIsDeterministic() throws {
        let a = try Data(contentsOf: URL(fileURLWithPath: try writeSample("a.skm")))
        let b = try Data(contentsOf: URL(fileURLWithPath: try writeSample("b.skm")))
        XCTAssertEqual(a, b)
    }

    // MARK: reader rules

    func patched(_ path: String, _ edit: (inout [UInt8]) -> Void, fixHeaderCRC: Bool = false) throws -> String {
        var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        edit(&b)
        if fixHeaderCRC {
            let hs = Int(b[16]) | Int(b[17]) << 8 | Int(b[18]) << 16
            var c = CRC32()
            c.update(Array(b[0..<56]))
            c.update(Array(b[64..<(64 + hs)]))
            for i in 0..<4 { b[56 + i] = UInt8((c.value >> (8 * UInt32(i))) & 0xff) }
        }
        let out = path + ".patched-\(UInt32.random(in: 0...UInt32.max))"
        FileManager.default.createFile(atPath: out, contents: Data(b))
        return out
    }

    func assertRefused(_ path: String, _ kind: SinkKitError.Kind, _ text: String, verify: Bool = false, line: UInt = #line) {
        XCTAssertThrowsError(try SKMFile(path: path, verify: verify), line: line) { e in
            guard let e = e as? SinkKitError else { return XCTFail("\(e)", line: line) }
            XCTAssertEqual(e.kind, kind, e.message, line: line)
            XCTAssertTrue(e.message.contains(text), "\"\(e.message)\" lacks \"\(text)\"", line: line)
        }
    }

    /// Offset of a tensor's table entry field, found by its name in the header bytes.
    func tableField(_ b: [UInt8], tensor: String, ndim: Int, field: Int) -> Int {
        let name = Array(tensor.utf8)
        var i = 64
        while i + name.count < b.count {
            if Array(b[i..<(i + name.count)]) == name && Int(b[i - 2]) == name.count { break }
            i += 1
        }
        // name, qtype/compression/ndim/reserved (4), group (4), dims, then offset, stored, raw
        return i + name.count + 8 + 8 * ndim + 8 * field
    }

    func testBadMagic() throws {
        assertRefused(try patched(try writeSample(), { $0[0] = 0x47 }), .malformedHeader, "bad magic")
    }
    func testUnknownMajorVersion() throws {
        assertRefused(try patched(try writeSample(), { $0[8] = 2 }), .malformedHeader, "this file is SKM 2.0")
    }
    func testNewerMinorVersionIsRead() throws {
        XCTAssertNoThrow(try SKMFile(path: try patched(try writeSample(), { $0[10] = 7 }, fixHeaderCRC: true)))
    }
    func testWrongByteOrder() throws {
        assertRefused(try patched(try writeSample(), { $0[12] = 1; $0[15] = 4 }), .malformedHeader, "byte-order")
    }
    func testTruncatedFile() throws {
        assertRefused(try patched(try writeSample(), { $0.removeLast(10) }), .truncated, "truncated")
        assertRefused(try patched(try writeSample(), { $0.removeLast($0.count - 40) }), .truncated, "too short")
    }
    func testHeaderChecksumMismatch() throws {
        let p = try writeSample()
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        let at = tableField(b, tensor: "w8", ndim: 2, field: 0) - 16 // a dimension byte
        assertRefused(try patched(p, { $0[at] ^= 0x01 }), .checksum, "header checksum mismatch")
    }
    func testTableEntryOutsideTheFile() throws {
        let p = try writeSample()
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        let at = tableField(b, tensor: "w4", ndim: 2, field: 0)
        assertRefused(try patched(p, { $0[at + 1] = 0x40 }, fixHeaderCRC: true), .layout, "lies outside")
    }
    func testOverlappingTensors() throws {
        let p = try writeSample()
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        let w8 = tableField(b, tensor: "w8", ndim: 2, field: 0), w4 = tableField(b, tensor: "w4", ndim: 2, field: 0)
        assertRefused(try patched(p, { for i in 0..<8 { $0[w4 + i] = $0[w8 + i] } }, fixHeaderCRC: true), .layout, "overlap")
    }
    func testRawBytesThatLie() throws {
        let p = try writeSample()
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        let at = tableField(b, tensor: "w8", ndim: 2, field: 2)
        assertRefused(try patched(p, { $0[at] &+= 2 }, fixHeaderCRC: true), .layout, "raw_bytes")
    }
    func testTensorChecksumMismatch() throws {
        let p = try writeSample()
        let f = try SKMFile(path: p)
        let at = f.dataOffset + f.info("w4")!.offset + 5
        let bad = try patched(p, { $0[at] ^= 0x10 })
        XCTAssertNoThrow(try SKMFile(path: bad))       // opening checks the header only
        assertRefused(bad, .checksum, "tensor w4: checksum mismatch", verify: true)
    }

    func testCRC32KnownAnswer() {
        var c = CRC32()
        c.update(Array("123456789".utf8))
        XCTAssertEqual(c.value, 0xCBF4_3926)
        var d = CRC32()
        d.update(Array(repeating: 0xAB, count: 1001)) // exercises the 8-byte and tail loops
        var e = CRC32()
        for _ in 0..<1001 { e.update([0xAB]) }
        XCTAssertEqual(d.value, e.value)
    }
}
