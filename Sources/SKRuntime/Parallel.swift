import Dispatch

/// Splits `0..<count` into `threads` contiguous chunks run concurrently. Each index is always
/// computed by exactly one worker with the same arithmetic, so results do not depend on the
/// thread count (the runtime's determinism rule).
@inline(__always)
func parallelFor(_ count: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    let t = max(1, min(threads, count))
    if t == 1 { body(0..<count); return }
    DispatchQueue.concurrentPerform(iterations: t) { i in
        body((count * i / t)..<(count * (i + 1) / t))
    }
}
