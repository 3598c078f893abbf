/// Stop strings over streamed text: text is passed on as soon as it cannot be the start of a
/// stop string; a suffix that could still become one is held back until the next piece decides.
/// Matching is on Unicode scalars (a stop string ends where its last scalar ends, whatever
/// grapheme it would join).
struct StopMatcher {
    let stops: [[Unicode.Scalar]]
    private var held: [Unicode.Scalar] = []

    init(_ stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }.map { Array($0.unicodeScalars) }
    }

    /// Adds `piece`; returns the text that is now safe to emit, and whether a stop string was
    /// found (then the text before it is returned and the rest is dropped).
    mutating func push(_ piece: String) -> (emit: String, stopped: Bool) {
        held += piece.unicodeScalars
        guard !stops.isEmpty else { return (flush(), false) }
        var first: Int?
        for s in stops where s.count <= held.count {
            for start in 0...(held.count - s.count) where first.map({ start < $0 }) ?? true {
                if held[start] == s[0] && Array(held[start..<(start + s.count)]) == s { first = start; break }
            }
        }
        if let f = first {
            let out = String(String.UnicodeScalarView(held[0..<f]))
            held = []
            return (out, true)
        }
        // Hold back the longest suffix that is a proper prefix of some stop string.
        var keep = 0
        for s in stops {
            for k in stride(from: min(s.count - 1, held.count), to: keep, by: -1) where Array(held.suffix(k)) == Array(s.prefix(k)) {
                keep = k
                break
            }
        }
        let out = String(String.UnicodeScalarView(held[0..<(held.count - keep)]))
        held.removeFirst(held.count - keep)
        return (out, false)
    }

    /// What is still held (the stream ended without a stop string).
    mutating func flush() -> String {
        defer { held = [] }
        return String(String.UnicodeScalarView(held))
    }
}
