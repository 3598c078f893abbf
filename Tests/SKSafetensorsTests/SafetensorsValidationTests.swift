import Foundation
import XCTest
import SKCore
import SKSafetensors

/// One test per validation rule of the reference safetensors reader, plus round trips.
final class SafetensorsValidationTests: XCTestCase {
    var dir = ""
    override func setUp() {
        dir = NSTemporaryDirectory() + "st-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Writes `length field + header + data` with a given (possibly lying) length field.
    func file(_ header: String, data: [UInt8], claimedLength: UInt64? = nil, raw: [UInt8]? = nil) -> String {
        let path = dir + "/f-\(UInt32.random(in: 0...UInt32.max)).safetensors"
        var bytes = [UInt8]()
        if let raw { bytes = raw } else {
            let h = Array(header.utf8)
            let n = claimedLength ?? UInt64(h.count)
            for i in 0..<8 { bytes.append(UInt8((n >> (8 * UInt64(i))) & 0xff)) }
            bytes += h + data
        }
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    func assertKind(_ kind: SinkKitError.Kind, _ path: String, contains text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafetensorsFile(path: path), file: file, line: line) { e in
            guard let e = e as? SinkKitError else { return XCTFail("not a SinkKitError: \(e)", file: file, line: line) }
            XCTAssertEqual(e.kind, kind, e.message, file: file, line: line)
            XCTAssertTrue(e.message.contains(text), "message \"\(e.message)\" lacks \"\(text)\"", file: file, line: line)
            XCTAssertTrue(e.message.contains(path), "message should name the file", file: file, line: line)
        }
    }

    let f32x2 = [UInt8](repeating: 0, count: 8)

    func testValidFileReads() throws {
        var data = [UInt8]()
        for v: Float in [1.5, -2.25] { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
        data += [0x00, 0x3C] // f16 1.0
        data += [0x80, 0x3F] // bf16 1.0
        let p = file(#"{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"h":{"dtype":"F16","shape":[1],"data_offsets":[8,10]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[10,12]}}"#, data: data)
        let f = try SafetensorsFile(path: p)
        XCTAssertEqual(f.metadata, ["k": "v"])
        XCTAssertEqual(try f.loadF32("a").data, [1.5, -2.25])
        XCTAssertEqual(try f.loadF32("h").data, [1.0])
        XCTAssertEqual(try f.loadF32("b").data, [1.0])
    }

    func testIntegerDtypesRead() throws {
        let p = file(#"{"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"u":{"dtype":"U8","shape":[2],"data_offsets":[8,10]},"s":{"dtype":"I16","shape":[1],"data_offsets":[10,12]}}"#,
                     data: [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 7, 9, 0xFF, 0xFF])
        let f = try SafetensorsFile(path: p)
        XCTAssertEqual(try f.loadF32("i").data, [-2])
        XCTAssertEqual(try f.loadF32("u").data, [7, 9])
        XCTAssertEqual(try f.loadF32("s").data, [-1])
    }

    func testEmptyTensorAndUnalignedDataAccepted() throws {
        let p = file(#"{"e":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]},"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"y":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}"#,
                     data: [1, 0, 0, 0x80, 0x3F])
        let f = try SafetensorsFile(path: p)
        XCTAssertEqual(try f.loadF32("y").data, [1.0])
        XCTAssertEqual(try f.loadF32("e").count, 0)
    }

    func testTooShortFile() { assertKind(.truncated, file("", data: [], raw: [1, 2, 3]), contains: "too short") }
    func testHeaderSizeCap() { assertKind(.malformedHeader, file("{}", data: [], claimedLength: 100_000_001), contains: "limit") }
    func testHeaderLongerThanFile() { assertKind(.truncated, file("{}", data: [], claimedLength: 500), contains: "header claims 500") }
    func testHugeLengthFieldDoesNotOverflow() { assertKind(.malformedHeader, file("{}", data: [], claimedLength: UInt64.max), contains: "limit") }
    func testNonUTF8Header() {
        var raw: [UInt8] = [4, 0, 0, 0, 0, 0, 0, 0]
        raw += [0x7B, 0xFF, 0xFE, 0x7D]
        assertKind(.malformedHeader, file("", data: [], raw: raw), contains: "UTF-8")
    }
    func testInvalidJSON() { assertKind(.malformedHeader, file(#"{"a": {"dtype": "F32", "#, data: []), contains: "not valid safetensors JSON") }
    func testHeaderNotAnObject() { assertKind(.malformedHeader, file("[1,2]", data: []), contains: "JSON object") }
    func testUnknownDtype() {
        assertKind(.unsupportedDType, file(#"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#, data: [0]), contains: "unknown dtype Q4")
    }
    func testSizeMismatch() {
        assertKind(.layout, file(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: f32x2), contains: "needs 12")
    }
    func testGapBetweenTensors() {
        assertKind(.layout, file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[6,10]}}"#, data: [UInt8](repeating: 0, count: 10)), contains: "gap")
    }
    func testGapAtStart() {
        assertKind(.layout, file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: f32x2), contains: "gap")
    }
    func testOverlap() {
        assertKind(.layout, file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: f32x2), contains: "overlaps")
    }
    func testTrailingBytesNotCovered() {
        assertKind(.layout, file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: f32x2), contains: "not covered")
    }
    func testTruncatedData() {
        assertKind(.truncated, file(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: f32x2), contains: "truncated")
    }
    func testShapeOverflow() {
        assertKind(.overflow, file(#"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), contains: "overflows")
    }
    func testOffsetBeyondInt64() {
        assertKind(.malformedHeader, file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}}"#, data: []), contains: "not valid")
    }
    func testNegativeDimension() {
        assertKind(.malformedHeader, file(#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), contains: "negative")
    }
    func testReversedOffsets() {
        assertKind(.layout, file(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0]), contains: "invalid data_offsets")
    }
    func testBadDataOffsetsArity() {
        assertKind(.malformedHeader, file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, data: [0, 0, 0, 0]), contains: "[begin, end]")
    }

    func testWriterRoundTripIsDeterministicAndAligned() throws {
        let entries = [SafetensorsWriter.Entry(name: "b", dtype: .F16, shape: [3]), SafetensorsWriter.Entry(name: "a", dtype: .F32, shape: [2, 2])]
        func write(_ path: String) throws {
            let w = try SafetensorsWriter(path: path, entries: entries, metadata: ["z": "1", "a": "quote\"d"])
            XCTAssertEqual(w.order.map(\.name), ["a", "b"]) // wider dtype first
            try w.write(name: "a", tensor: Tensor(shape: [2, 2], data: [1, 2, 3, 4]))
            try w.write(name: "b", tensor: Tensor(shape: [3], data: [0.5, -1, 65504]))
            try w.finish()
        }
        try write(dir + "/one.safetensors")
        try write(dir + "/two.safetensors")
        let one = try Data(contentsOf: URL(fileURLWithPath: dir + "/one.safetensors"))
        XCTAssertEqual(one, try Data(contentsOf: URL(fileURLWithPath: dir + "/two.safetensors")))
        let f = try SafetensorsFile(path: dir + "/one.safetensors")
        XCTAssertEqual(f.dataStart % 8, 0)
        XCTAssertEqual(f.metadata, ["z": "1", "a": "quote\"d"])
        XCTAssertEqual(try f.loadF32("a").data, [1, 2, 3, 4])
        XCTAssertEqual(try f.loadF32("b").data, [0.5, -1, 65504])
    }

    func testWriterRefusesOutOfOrderAndMissingTensors() throws {
        let w = try SafetensorsWriter(path: dir + "/x.safetensors", entries: [.init(name: "a", dtype: .F32, shape: [1]), .init(name: "b", dtype: .F32, shape: [1])], metadata: [:])
        XCTAssertThrowsError(try w.write(name: "b", tensor: Tensor(shape: [1], data: [1])))
        try w.write(name: "a", tensor: Tensor(shape: [1], data: [1]))
        XCTAssertThrowsError(try w.finish())
    }

    func testHalfConversionsRoundToNearestEven() {
        XCTAssertEqual(HalfFloat.f32ToBF16(1.0), 0x3F80)
        XCTAssertEqual(HalfFloat.f32ToBF16(Float(bitPattern: 0x3F80_8000)), 0x3F80) // tie -> even
        XCTAssertEqual(HalfFloat.f32ToBF16(Float(bitPattern: 0x3F81_8000)), 0x3F82) // tie -> even (up)
        XCTAssertTrue(HalfFloat.bf16ToF32(HalfFloat.f32ToBF16(.nan)).isNaN)
        XCTAssertEqual(HalfFloat.f16ToF32(HalfFloat.f32ToF16(65504)), 65504)
        XCTAssertEqual(HalfFloat.f16ToF32(0x0001), Float(bitPattern: 0x3380_0000)) // smallest subnormal
    }
}
