#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Peak and current resident memory of this process, from /proc/self/status (Linux).
/// VmHWM counts mapped file pages too, which is what a memory budget must count.
public enum ProcessMemory {
    public static func peakResidentBytes() -> Int? { field("VmHWM:") }
    public static func residentBytes() -> Int? { field("VmRSS:") }

    /// Lets this executable's read-only code mapping (code, read-only data, relocation tables:
    /// a static Swift binary's is ~20 MB) hold only the pages actually used: marks it for random
    /// access, so a fault maps one page rather than the 64 KB around it, and drops what start-up
    /// mapped. The pages are unmodified file pages, re-read from the page cache on demand.
    public static func trimCodePages() {
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"),
              let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return }
        for line in maps.split(separator: "\n") {
            let f = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard f.count == 6, f[1] == "r-xp", f[5].drop(while: { $0 == " " }) == exe else { continue }
            let range = f[0].split(separator: "-")
            guard range.count == 2, let lo = UInt(range[0], radix: 16), let hi = UInt(range[1], radix: 16), hi > lo,
                  let p = UnsafeMutableRawPointer(bitPattern: lo) else { continue }
            madvise(p, Int(hi - lo), MADV_RANDOM)
            madvise(p, Int(hi - lo), MADV_DONTNEED)
        }
    }

    private static func field(_ name: String) -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix(name) {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }
}
