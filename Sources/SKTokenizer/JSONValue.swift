#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKCore

/// The small JSON trees of a tokenizer (normalizer, pre-tokenizer, …), as stored in SKM metadata.
enum JSONValue {
    static func parse(_ text: String, what: String) throws -> Any? {
        if text == "null" || text.isEmpty { return nil }
        return try StrictJSON.parse(Data(text.utf8), path: "tokenizer \(what)")
    }
}
