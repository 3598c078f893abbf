import Foundation
import SKCore

/// Python `re`-style matching on top of NSRegularExpression (ICU); the patterns PEFT users
/// write (alternations, character classes, `.*`) mean the same in both.
enum PyRegex {
    static func compile(_ pattern: String, what: String) throws -> NSRegularExpression {
        try RegexSafety.check(pattern, what: what)
        do { return try NSRegularExpression(pattern: pattern) } catch {
            throw SinkKitError(.adapter, "\(what): invalid regular expression \(pattern)")
        }
    }

    /// `re.fullmatch(pattern, s)`.
    static func fullMatch(_ re: NSRegularExpression, _ s: String) -> Bool {
        let r = NSRange(s.startIndex..<s.endIndex, in: s)
        guard let m = re.firstMatch(in: s, options: [.anchored], range: r) else { return false }
        return m.range.location == 0 && m.range.length == r.length
    }
}
