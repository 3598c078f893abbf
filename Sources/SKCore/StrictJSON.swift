#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Every JSON file SinkKit reads from a stranger (config.json, adapter_config.json, the shard
/// index, tokenizer.json's trees, tokenizer_config.json, a safetensors header, JSON stored in SKM
/// metadata, a request to the server) goes through here: `JSONScanner` parses it strictly
/// (RFC 8259, nesting at most 512 deep, no key twice in one object). A duplicate key is refused
/// because readers disagree on which value wins; depth is limited so that no reader recurses
/// without bound.
public enum StrictJSON {
    /// Checks `data` (see above) without building anything; errors name `path` and the byte offset.
    public static func validate(_ data: Data, path: String) throws {
        try data.withUnsafeBytes { raw in
            var s = JSONScanner(raw.bindMemory(to: UInt8.self), path: path)
            try s.skip()
            try s.end()
        }
    }

    /// The value of a JSON document: `[String: Any]`, `[Any]`, `String`, `Bool`, `JSONNumber`
    /// (the literal, read as an integer or a double on request) or `JSONNull`.
    public static func parse(_ data: Data, path: String) throws -> Any {
        try data.withUnsafeBytes { raw in
            var s = JSONScanner(raw.bindMemory(to: UInt8.self), path: path)
            let v = try s.value()
            try s.end()
            return v
        }
    }

    /// A JSON document that must be an object.
    public static func object(_ data: Data, path: String, kind: SinkKitError.Kind = .malformedHeader) throws -> [String: Any] {
        guard let d = try parse(data, path: path) as? [String: Any] else {
            throw SinkKitError(kind, "\(path): not a JSON object")
        }
        return d
    }

    /// A JSON object read from a file (a regular file of at most `limit` bytes).
    public static func object(file path: String, limit: Int = Limits.maxJSONFileBytes, kind: SinkKitError.Kind = .malformedHeader) throws -> [String: Any] {
        try object(try InputFile.read(path, limit: limit), path: path, kind: kind)
    }
}

/// A JSON number as written: the literal is kept, so a value read and written again (a merged
/// config.json) keeps its digits, and each reader decides what it needs.
public struct JSONNumber: Sendable, Equatable, CustomStringConvertible {
    public let literal: String
    public init(literal: String) { self.literal = literal }
    public init(_ v: Int) { literal = String(v) }

    /// The nearest double (every JSON number has one; beyond ±1.8e308 it is infinite).
    public var doubleValue: Double { Double(literal) ?? .nan }
    /// The value as an Int when it is a whole number within Int's range (`3`, `3.0`, `3e2`), else nil.
    public var intValue: Int? {
        if let i = Int(literal) { return i }
        let d = doubleValue
        guard d.isFinite, d == d.rounded(), abs(d) < 9.0e18 else { return nil }
        return Int(d)
    }
    public var description: String { literal }
}

/// JSON's `null` (full Foundation's NSNull is not available to the FoundationEssentials build).
public struct JSONNull: Sendable, Equatable, CustomStringConvertible {
    public init() {}
    public var description: String { "null" }
}
