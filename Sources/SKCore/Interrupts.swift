#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What the command-line tools do when they are interrupted while writing: SIGINT, SIGTERM and
/// SIGHUP remove every registered temporary output and end the process with 128 + the signal
/// number (130 for Ctrl-C); SIGXFSZ (a file-size limit) is ignored, so the write that exceeded it
/// fails with EFBIG and is reported like any other write error. The handlers run on a dispatch
/// queue, not in signal context, so removing a directory tree is safe there.
public enum Interrupts {
    private static let lock = Lock()
    nonisolated(unsafe) private static var temporaries: [String] = []
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// Installs the handlers (once).
    public static func install() {
        lock.lock()
        defer { lock.unlock() }
        guard sources.isEmpty else { return }
        signal(SIGXFSZ, SIG_IGN)
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { interrupted(by: sig) }
            s.resume()
            sources.append(s)
        }
    }

    public static func register(_ path: String) {
        lock.lock(); defer { lock.unlock() }
        temporaries.append(path)
    }

    public static func unregister(_ path: String) {
        lock.lock(); defer { lock.unlock() }
        temporaries.removeAll { $0 == path }
    }

    static func interrupted(by sig: Int32) {
        lock.lock()
        let paths = temporaries
        lock.unlock()
        // The main thread may still be adding to a temporary directory: try a few times.
        for p in paths {
            for _ in 0..<5 {
                if (try? FileManager.default.removeItem(atPath: p)) != nil || !InputFile.exists(p) { break }
                usleep(20_000)
            }
        }
        let name = sig == SIGINT ? "interrupted" : sig == SIGTERM ? "terminated" : "hung up"
        let msg = "\n\(name): \(paths.isEmpty ? "nothing was written" : "removed the unfinished output")\n"
        _ = msg.withCString { write(2, $0, strlen($0)) }
        _exit(128 + sig)
    }
}
