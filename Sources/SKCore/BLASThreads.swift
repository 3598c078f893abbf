#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS (the pthread build Debian installs) starts a worker thread per extra core when it is
/// loaded, and each one spins on sched_yield for about 2^28 cycles (~0.1 s) before it sleeps,
/// whether or not a BLAS call ever comes: on a 2-core box that takes CPU from start-up (the model
/// load and first prompt in skrun, the tokenizer and the first tensors in skconv). The functions
/// are looked up at run time: a serial or other BLAS has no threads to stop.
public enum BLASThreads {
    /// Stops OpenBLAS's idle workers (`blas_thread_shutdown_`). A later call that wants threads
    /// starts them again (OpenBLAS re-initialises its pool lazily), so multi-threaded sgemm, as
    /// in merges, is unaffected.
    public static func stopIdleWorkers() {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "blas_thread_shutdown_") else { return }
        _ = unsafeBitCast(sym, to: (@convention(c) () -> Int32).self)()
    }

    /// One BLAS thread (sgemm runs in its caller: the runtime's own workers parallelise), and no
    /// idle workers. Setting the count first: OpenBLAS's setter re-creates a stopped pool.
    public static func useCallerThreadOnly() {
        if let set = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "openblas_set_num_threads") {
            unsafeBitCast(set, to: (@convention(c) (Int32) -> Void).self)(1)
        }
        stopIdleWorkers()
    }
}
