import Foundation
import XCTest
import SKCore
@testable import SKTokenizer

/// The hand-written matchers against the standard library's regex engine running the patterns
/// they stand for, on seeded random text drawn from the characters where the classes differ
/// (letters, numbers of every category, Unicode white space, combining marks, apostrophes);
/// NFKC/NFKD against Foundation's ICU normalization.
final class TextPatternTests: XCTestCase {
    static let alphabet: [Character] = Array("aZé日ß ' sStTrRevmlLdD19½²٣Ⅻ①.,!?-_\"") + [" ", " ", " ", "\n", "\t", "\r", "\u{0B}", "\u{0C}",
        "\u{85}", "\u{A0}", "\u{2003}", "\u{3000}", "\u{2028}", "\u{301}", "🚀", "\u{200B}", "'", "'"]

    func randomStrings(_ n: Int, seed: UInt64) -> [String] {
        var rng = SplitMix(seed)
        return (0..<n).map { _ in
            String((0..<Int(rng.next() % 16 + 1)).map { _ in Self.alphabet[Int(rng.next() % UInt64(Self.alphabet.count))] })
        }
    }

    func pieces(_ p: TextPattern, _ s: String) -> [String] {
        p.matches(in: s).map { String(s.unicodeScalars[$0]) }
    }

    func testGPT2MatcherEqualsTheRegex() throws {
        let engine = try TextPattern.engine(ByteLevel.pattern)
        for s in randomStrings(20_000, seed: 7) + ["'s", "''s", " 's", "a  b", "a \n b", "  ", " \u{A0}x", "x\u{301}y"] {
            XCTAssertEqual(pieces(.gpt2, s), pieces(engine, s), s.debugDescription)
        }
    }

    func testNumericMatcherEqualsTheRegex() throws {
        let runs = try TextPattern.engine(#"\p{N}+"#), one = try TextPattern.engine(#"\p{N}"#)
        for s in randomStrings(5_000, seed: 8) {
            XCTAssertEqual(pieces(.numeric(runs: true), s), pieces(runs, s), s.debugDescription)
            XCTAssertEqual(pieces(.numeric(runs: false), s), pieces(one, s), s.debugDescription)
        }
    }

    /// Class ranges compare scalars, as Oniguruma and llama.cpp do: `ῐ-ΐ` (U+1FD0-U+1FD3, whose
    /// upper bound is canonically U+0390) and `K-ℭ` (from the Kelvin sign) from DeepSeek's
    /// pre-tokenizer are accepted, match their scalars and nothing canonically equal outside them.
    func testClassRangesCompareScalars() throws {
        let p = try TextPattern(regex: "[\u{1FD0}-\u{1FD3}\u{212A}-\u{212D}]+")
        let inside = "\u{1FD0}\u{1FD2}\u{212A}\u{212C}"
        let text = "a" + inside + "b"
        XCTAssertEqual(p.matches(in: text).count, 1)
        XCTAssertEqual(p.matches(in: text).first.map { String(text[$0]) }, inside)
        XCTAssertTrue(p.matches(in: "\u{0390}K").isEmpty, "U+0390 and K are outside the scalar ranges")
        // An escaped non-ASCII literal stays literal.
        XCTAssertEqual(try TextPattern(regex: "\\ü+").matches(in: "xüüy").count, 1)
        XCTAssertEqual(TextPattern.scalarEscaped("a[é-ë]"), "a[\\u{e9}-\\u{eb}]")
    }

    func testLiteralMatchesEveryOccurrenceWithoutOverlap() {
        XCTAssertEqual(pieces(.literal(Array("aa".unicodeScalars)), "aaaaa"), ["aa", "aa"])
        XCTAssertEqual(TextPattern.literal(Array("▁".unicodeScalars)).matches(in: "a▁b▁").count, 2)
        // a combining mark after the match does not hide it (scalars, not grapheme clusters)
        XCTAssertEqual(pieces(.literal(Array(" ".unicodeScalars)), "a \u{301}b"), [" "])
    }

    func testRegexesThatBacktrackExponentiallyAreRefused() {
        XCTAssertThrowsError(try TextPattern(regex: "(a|aa)+$"))
        XCTAssertThrowsError(try TextPattern(regex: "(unclosed"))
    }

    func testCompatibilityNormalizationMatchesICU() {
        let samples = ["ﬁne ｆｕｌｌｗｉｄｔｈ ㌀ Å ﬀ ™ x² ½ ①", "e\u{301} é Ǆ ǅ ǆ ᄒᆞᆫ 한국어", "Ⅻ ⅻ ㍱ ℌ ℍ ℕ ﬃ", "plain ascii"]
            + randomStrings(2_000, seed: 9)
        for s in samples {
            XCTAssertEqual(Normalizer.nfkc.apply(s).unicodeScalars.map(\.value), s.precomposedStringWithCompatibilityMapping.unicodeScalars.map(\.value), s.debugDescription)
            XCTAssertEqual(Normalizer.nfkd.apply(s).unicodeScalars.map(\.value), s.decomposedStringWithCompatibilityMapping.unicodeScalars.map(\.value), s.debugDescription)
            XCTAssertEqual(Normalizer.nfc.apply(s).unicodeScalars.map(\.value), s.precomposedStringWithCanonicalMapping.unicodeScalars.map(\.value), s.debugDescription)
            XCTAssertEqual(Normalizer.nfd.apply(s).unicodeScalars.map(\.value), s.decomposedStringWithCanonicalMapping.unicodeScalars.map(\.value), s.debugDescription)
        }
    }
}

/// A small seeded generator (SplitMix64), so the random cases are the same on every run.
struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}
