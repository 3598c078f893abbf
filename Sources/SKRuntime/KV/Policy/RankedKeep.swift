/// The ranking H2O and TOVA share: indices (ascending) of slots 0..<n to keep, every `forced`
/// slot and the `best` others by score, higher first, then lower position (a strict order:
/// positions differ). A decode step drops one slot, so dropping up to `scanLimit` slots scans for
/// the worst each time (O(drops · n)); more (a prefill chunk) sorts the candidates once.
func keepRanked(count n: Int, best: Int, scores: [Double], positions: [Int], forced: (Int) -> Bool) -> [Int] {
    var gone = [Bool](repeating: false, count: n)
    var candidates = 0
    for i in 0..<n where !forced(i) { candidates += 1 }
    let drops = candidates - max(0, best)
    guard drops > 0 else { return Array(0..<n) }
    // i ranks below j
    func worse(_ i: Int, _ j: Int) -> Bool { scores[i] != scores[j] ? scores[i] < scores[j] : positions[i] > positions[j] }
    if drops <= scanLimit {
        for _ in 0..<drops {
            var worst = -1
            for i in 0..<n where !gone[i] && !forced(i) && (worst < 0 || worse(i, worst)) { worst = i }
            gone[worst] = true
        }
    } else {
        let ranked = (0..<n).filter { !forced($0) }.sorted { worse($1, $0) }
        for i in ranked[(candidates - drops)...] { gone[i] = true }
    }
    var keep: [Int] = []
    keep.reserveCapacity(n - drops)
    for i in 0..<n where !gone[i] { keep.append(i) }
    return keep
}

/// Drops above this many sort instead of scanning.
private let scanLimit = 16
