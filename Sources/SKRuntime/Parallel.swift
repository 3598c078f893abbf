#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SKCore

/// Splits `0..<count` into `threads` contiguous chunks run concurrently on the shared worker
/// pool (chunk 0 on the calling thread). Each index is always computed by exactly one worker with
/// the same arithmetic, so results do not depend on the thread count (the runtime's determinism
/// rule).
@inline(__always)
func parallelFor(_ count: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    let t = max(1, min(threads, count))
    if t == 1 { body(0..<count); return }
    WorkerPool.shared.run(chunks: t) { i in body((count * i / t)..<(count * (i + 1) / t)) }
}

/// A persistent pool of worker threads released by one atomic store and joined by spinning on a
/// counter: a generation step dispatches ~250 small jobs per token, where a dispatch through
/// libdispatch (a semaphore wake-up per worker) cost a large share of the token. Idle workers
/// spin briefly, then sleep on a condition variable, so an idle process uses no CPU.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let condition = Condition()
    private var job: ((Int) -> Void)?
    private var chunks = 0
    private var workers = 0
    private static let spins = 200_000

    /// Runs `body(0..<chunks)`, chunk 0 on the caller. Serial when called from a worker or while
    /// another thread is using the pool. Every worker acknowledges every job (running its chunk if
    /// it has one), so no worker can lag into the next job.
    func run(chunks n: Int, _ body: (Int) -> Void) {
        // a nested call (from a worker, or from another thread meanwhile) finds the pool busy
        guard n > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for i in 0..<n { body(i) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        while workers < n - 1, spawn(index: workers) { workers += 1 }
        withoutActuallyEscaping(body) { escaping in
            job = escaping
            chunks = n
            pending.store(workers, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                condition.lock()
                condition.broadcast()
                condition.unlock()
            }
            escaping(0)
            // chunks without a worker (the system refused a thread) run here
            if workers + 1 < n { for i in (workers + 1)..<n { escaping(i) } }
            while pending.load(ordering: .acquiring) > 0 {}
            job = nil
        }
    }

    private func spawn(index: Int) -> Bool {
        let seen = generation.load(ordering: .acquiring)
        let started = startThread(stackSize: 1 << 20) { [self] in
            var last = seen
            while true {
                var spin = 0, now = generation.load(ordering: .acquiring)
                while now == last && spin < Self.spins { spin += 1; now = generation.load(ordering: .acquiring) }
                if now == last {
                    condition.lock()
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == last { condition.wait() }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    condition.unlock()
                    now = generation.load(ordering: .acquiring)
                }
                last = now
                // worker k runs chunk k + 1 of the current job, if it has one
                if index + 1 < chunks, let job { job(index + 1) }
                pending.subtract(1, ordering: .releasing)
            }
        }
        return started
    }
}
