import Foundation

/// Outputs appear whole or not at all: everything is written under a temporary name beside
/// the destination, then renamed into place. A failure removes the temporary.
public enum AtomicOutput {
    /// A fresh temporary path next to `destination` (same filesystem, so rename is atomic).
    public static func temporaryPath(for destination: String) -> String {
        let url = URL(fileURLWithPath: destination)
        let dir = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        return dir + "/." + name + ".tmp-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }

    /// Refuses an existing destination unless `force` is set.
    public static func checkDestination(_ destination: String, force: Bool) throws {
        if FileManager.default.fileExists(atPath: destination) && !force {
            throw SinkKitError(.outputExists, "\(destination) already exists (use --force to replace it)")
        }
    }

    /// Moves a finished temporary file or directory into place, replacing an existing
    /// destination only when `force` is set.
    public static func commit(temporary: String, to destination: String, force: Bool) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: destination) {
            guard force else { throw SinkKitError(.outputExists, "\(destination) already exists (use --force to replace it)") }
            let old = temporaryPath(for: destination) + ".old"
            do {
                try fm.moveItem(atPath: destination, toPath: old)
                try fm.moveItem(atPath: temporary, toPath: destination)
                try? fm.removeItem(atPath: old)
            } catch {
                throw SinkKitError(.io, "cannot replace \(destination): \(error.localizedDescription)")
            }
            return
        }
        if rename(temporary, destination) != 0 {
            throw SinkKitError(.io, "cannot rename \(temporary) to \(destination): \(String(cString: strerror(errno)))")
        }
    }

    /// Removes a temporary left by a failed write (best effort).
    public static func discard(_ temporary: String) {
        try? FileManager.default.removeItem(atPath: temporary)
    }
}
