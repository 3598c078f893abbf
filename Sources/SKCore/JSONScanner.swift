/// A validating, streaming JSON reader (RFC 8259) over UTF-8 bytes. Written for the one large JSON
/// input the converter reads, tokenizer.json, whose vocabulary and merges (about 100,000 strings)
/// took Foundation's JSONSerialization plus the bridging out of `[String: Any]` about 100 ms; also
/// the only JSON parser of every other JSON file SinkKit reads (`StrictJSON`), so that the runtime
/// needs FoundationEssentials only, not full Foundation (and its 30 MB of ICU tables). Callers walk objects and
/// arrays with closures and take strings and integers directly; any other value can be skipped
/// (still validated), its byte range kept to parse into a tree (`value()`) when it is small.
///
/// Errors name the file and the byte offset. Nesting deeper than `maxDepth` levels is refused
/// rather than recursed into, and a key that appears twice in one object is refused: readers
/// disagree on which of the two wins (serde_json keeps the last, others the first), so a file that
/// has one would mean different things to different tools.
public struct JSONScanner {
    public enum Kind: Sendable { case object, array, string, number, bool, null }

    public static let maxDepth = 512

    private let b: UnsafeBufferPointer<UInt8>
    private let path: String
    public private(set) var offset = 0
    private var depth = 0

    public init(_ bytes: UnsafeBufferPointer<UInt8>, path: String) {
        b = bytes
        self.path = path
    }

    public func error(_ what: String) -> SinkKitError {
        SinkKitError(.malformedHeader, "\(path): invalid JSON at byte \(offset): \(what)")
    }

    private mutating func skipSpace() {
        while offset < b.count, b[offset] == 0x20 || b[offset] == 0x0A || b[offset] == 0x0D || b[offset] == 0x09 { offset += 1 }
    }

    private mutating func expect(_ c: UInt8) throws {
        skipSpace()
        guard offset < b.count, b[offset] == c else { throw error("expected '\(Character(Unicode.Scalar(c)))'") }
        offset += 1
    }

    /// The kind of the next value (after white space).
    public mutating func kind() throws -> Kind {
        skipSpace()
        guard offset < b.count else { throw error("unexpected end of input") }
        switch b[offset] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        default: throw error("expected a value")
        }
    }

    /// Calls `member` with each key of the object that follows; `member` must read (or skip) the value.
    public mutating func object(_ member: (inout JSONScanner, String) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        var seen = Set<ByteKey>()
        try items(closedBy: UInt8(ascii: "}"), in: "an object") { s in
            let at = s.offset
            let key = try s.string()
            guard seen.insert(ByteKey(key)).inserted else {
                s.offset = at
                throw s.error("the key \"\(key.prefix(80))\" appears twice in one object")
            }
            try s.expect(UInt8(ascii: ":"))
            try member(&s, key)
        }
    }

    /// Calls `element` for each element of the array that follows; `element` must read (or skip) it.
    public mutating func array(_ element: (inout JSONScanner) throws -> Void) throws {
        try expect(UInt8(ascii: "["))
        try items(closedBy: UInt8(ascii: "]"), in: "an array", element)
    }

    /// The comma-separated items of an object or array after its opening bracket, to `close`.
    private mutating func items(closedBy close: UInt8, in what: String, _ item: (inout JSONScanner) throws -> Void) throws {
        try enter()
        skipSpace()
        if offset < b.count, b[offset] == close { offset += 1; depth -= 1; return }
        while true {
            try item(&self)
            skipSpace()
            guard offset < b.count else { throw error("unexpected end of input in \(what)") }
            if b[offset] == UInt8(ascii: ",") { offset += 1; continue }
            if b[offset] == close { offset += 1; break }
            throw error("expected ',' or '\(Character(Unicode.Scalar(close)))'")
        }
        depth -= 1
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= Self.maxDepth else { throw error("nested deeper than \(Self.maxDepth) levels") }
    }

    /// A string, its escapes decoded; the text must be valid UTF-8 without raw control characters.
    public mutating func string() throws -> String {
        try expect(UInt8(ascii: "\""))
        let start = offset
        // Fast path: no escapes.
        while offset < b.count, b[offset] != UInt8(ascii: "\""), b[offset] != UInt8(ascii: "\\"), b[offset] >= 0x20 { offset += 1 }
        guard offset < b.count else { throw error("unterminated string") }
        if b[offset] == UInt8(ascii: "\"") {
            offset += 1
            return try utf8(UnsafeBufferPointer(rebasing: b[start..<offset - 1]))
        }
        var bytes = Array(b[start..<offset])
        while true {
            guard offset < b.count else { throw error("unterminated string") }
            let c = b[offset]
            if c == UInt8(ascii: "\"") { offset += 1; break }
            guard c >= 0x20 else { throw error("a raw control character in a string") }
            if c != UInt8(ascii: "\\") { bytes.append(c); offset += 1; continue }
            guard offset + 1 < b.count else { throw error("unterminated escape") }
            let e = b[offset + 1]
            offset += 2
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(e)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var u = try hex4()
                if (0xD800..<0xDC00).contains(u) {
                    guard offset + 1 < b.count, b[offset] == UInt8(ascii: "\\"), b[offset + 1] == UInt8(ascii: "u") else {
                        throw error("a lone UTF-16 high surrogate")
                    }
                    offset += 2
                    let lo = try hex4()
                    guard (0xDC00..<0xE000).contains(lo) else { throw error("a high surrogate without its low surrogate") }
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..<0xE000).contains(u) {
                    throw error("a lone UTF-16 low surrogate")
                }
                bytes.append(contentsOf: String(Character(Unicode.Scalar(u)!)).utf8)
            default: throw error("an invalid escape")
            }
        }
        return try bytes.withUnsafeBufferPointer { try utf8($0) }
    }

    /// The text of UTF-8 bytes; invalid UTF-8 is an error.
    private func utf8(_ p: UnsafeBufferPointer<UInt8>) throws -> String {
        guard let s = String(validating: p, as: UTF8.self) else { throw error("a string is not valid UTF-8") }
        return s
    }

    private mutating func hex4() throws -> UInt32 {
        guard offset + 4 <= b.count else { throw error("a truncated \\u escape") }
        var v: UInt32 = 0
        for k in 0..<4 {
            let c = b[offset + k]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw error("a \\u escape with a non-hex digit")
            }
            v = v << 4 | d
        }
        offset += 4
        return v
    }

    /// A number that must be an integer literal (no fraction, no exponent) within Int's range.
    public mutating func int() throws -> Int {
        skipSpace()
        let start = offset
        let r = try numberRange()
        var i = r.lowerBound, negative = false, v = 0
        if b[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        while i < r.upperBound, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[i]) {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(b[i] - UInt8(ascii: "0")))
            guard !o1, !o2 else { offset = start; throw error("an integer out of range") }
            v = a
            i += 1
        }
        guard i == r.upperBound else { offset = start; throw error("expected an integer") }
        return negative ? -v : v
    }

    /// `true` or `false`.
    public mutating func bool() throws -> Bool {
        skipSpace()
        if literal("true") { return true }
        if literal("false") { return false }
        throw error("expected true or false")
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard offset + n <= b.count else { return false }
        for k in 0..<n where b[offset + k] != word.utf8Start[k] { return false }
        offset += n
        return true
    }

    private mutating func numberRange() throws -> Range<Int> {
        let start = offset
        func digits() -> Int {
            let s = offset
            while offset < b.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[offset]) { offset += 1 }
            return offset - s
        }
        if offset < b.count, b[offset] == UInt8(ascii: "-") { offset += 1 }
        guard offset < b.count else { throw error("a truncated number") }
        if b[offset] == UInt8(ascii: "0") { offset += 1 } else if digits() == 0 { throw error("expected a digit") }
        if offset < b.count, b[offset] == UInt8(ascii: ".") {
            offset += 1
            guard digits() > 0 else { throw error("expected a digit after '.'") }
        }
        if offset < b.count, b[offset] == UInt8(ascii: "e") || b[offset] == UInt8(ascii: "E") {
            offset += 1
            if offset < b.count, b[offset] == UInt8(ascii: "+") || b[offset] == UInt8(ascii: "-") { offset += 1 }
            guard digits() > 0 else { throw error("expected a digit in the exponent") }
        }
        return start..<offset
    }

    /// Validates and skips the next value; returns its byte range.
    @discardableResult
    public mutating func skip() throws -> Range<Int> {
        let k = try kind()
        let start = offset
        switch k {
        case .object: try object { s, _ in try s.skip() }
        case .array: try array { s in try s.skip() }
        case .string: _ = try string()
        case .number: _ = try numberRange()
        case .bool: _ = try bool()
        case .null: guard literal("null") else { throw error("expected null") }
        }
        return start..<offset
    }

    /// The next value as a tree: `[String: Any]`, `[Any]`, `String`, `Bool`, `JSONNumber` or
    /// `JSONNull` (see `StrictJSON.parse`). Two keys of one object that differ in bytes but are the
    /// same text to Swift's `String ==` (canonical equivalence) cannot both live in a dictionary,
    /// so they are refused too.
    public mutating func value() throws -> Any {
        switch try kind() {
        case .object:
            var d = [String: Any]()
            try object { s, key in
                let at = s.offset
                let v = try s.value()
                guard d.updateValue(v, forKey: key) == nil else {
                    s.offset = at
                    throw s.error("two keys of one object are the same text (\"\(key.prefix(80))\", canonically equivalent)")
                }
            }
            return d
        case .array:
            var a = [Any]()
            try array { s in a.append(try s.value()) }
            return a
        case .string: return try string()
        case .bool: return try bool()
        case .null:
            guard literal("null") else { throw error("expected null") }
            return JSONNull()
        case .number:
            let r = try numberRange()
            return JSONNumber(literal: String(decoding: bytes(r), as: UTF8.self))
        }
    }

    /// The bytes of a range returned by `skip()`.
    public func bytes(_ r: Range<Int>) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: b[r]) }

    /// Nothing but white space is left.
    public mutating func end() throws {
        skipSpace()
        guard offset == b.count else { throw error("unexpected data after the JSON value") }
    }
}

/// A string compared byte for byte (Swift's `==` on strings is canonical equivalence, under
/// which "é" and "e\u{301}" are equal; JSON keys and tokens are not).
public struct ByteKey: Hashable, Sendable {
    public let s: String
    public init(_ s: String) { self.s = s }
    public static func == (a: ByteKey, b: ByteKey) -> Bool { a.s.utf8.elementsEqual(b.s.utf8) }
    public func hash(into h: inout Hasher) {
        var copy = s
        copy.withUTF8 { h.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
