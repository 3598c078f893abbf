import Foundation
import SKCore

/// Parsed JSON of the tokenizer sub-objects.
enum JSONValue {
    static func parse(_ text: String, what: String) throws -> Any? {
        if text == "null" || text.isEmpty { return nil }
        do { return try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) } catch {
            throw SinkKitError(.malformedHeader, "tokenizer \(what) is not valid JSON")
        }
    }
}
