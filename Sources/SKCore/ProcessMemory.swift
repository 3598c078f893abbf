import Foundation

/// Peak and current resident memory of this process, from /proc/self/status (Linux).
/// VmHWM counts mapped file pages too, which is what a memory budget must count.
public enum ProcessMemory {
    public static func peakResidentBytes() -> Int? { field("VmHWM:") }
    public static func residentBytes() -> Int? { field("VmRSS:") }

    private static func field(_ name: String) -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix(name) {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }
}
