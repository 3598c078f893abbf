import Foundation

/// Every JSON file SinkKit reads from a stranger (config.json, adapter_config.json, the shard
/// index, tokenizer.json's trees, tokenizer_config.json, a safetensors header, JSON stored in SKM
/// metadata) goes through here: `JSONScanner` validates it first (RFC 8259, nesting at most
/// 512 deep, no key twice in one object), then Foundation builds the tree. A duplicate key is
/// refused because readers disagree on which value wins; depth is limited so that no reader,
/// ours or Foundation's, recurses without bound.
public enum StrictJSON {
    /// Checks `data` (see above) without building anything; errors name `path` and the byte offset.
    public static func validate(_ data: Data, path: String) throws {
        try data.withUnsafeBytes { raw in
            var s = JSONScanner(raw.bindMemory(to: UInt8.self), path: path)
            try s.skip()
            try s.end()
        }
    }

    /// The value of a JSON document (`[String: Any]`, `[Any]`, `String`, `NSNumber`, `NSNull`).
    public static func parse(_ data: Data, path: String) throws -> Any {
        try validate(data, path: path)
        do {
            return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw SinkKitError(.malformedHeader, "\(path): invalid JSON (\(error.localizedDescription))")
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
