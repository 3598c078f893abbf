#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SKCore

/// A small record of SKM files whose every checksum has been checked, so that `skrun` verifies a
/// multi-gigabyte file on slow edge storage once, not at every start. A file is known by device,
/// inode, size, modification and status-change times (nanoseconds) and its header CRC: any write
/// to it, a replacement, or a touch that resets mtime (which still moves ctime) makes it unknown
/// again. The record is a text file, one file per line; it is a cache: unreadable or missing, it is
/// simply empty, and it keeps the newest `capacity` entries.
public struct VerifiedFiles {
    public let path: String?
    public static let capacity = 256

    /// `$SINKKIT_CACHE/verified-skm`, else `$XDG_CACHE_HOME/sinkkit/…`, else `~/.cache/sinkkit/…`.
    public static var defaultPath: String? {
        let env = ProcessInfo.processInfo.environment
        if let c = env["SINKKIT_CACHE"], !c.isEmpty { return c + "/verified-skm" }
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return x + "/sinkkit/verified-skm" }
        if let h = env["HOME"], !h.isEmpty { return h + "/.cache/sinkkit/verified-skm" }
        return nil
    }

    public init(path: String? = VerifiedFiles.defaultPath) { self.path = path }

    /// The line that identifies an opened SKM file (taken from the descriptor that was mapped).
    public static func key(of file: SKMFile) -> String {
        file.file.identity + " " + String(file.headerCRC, radix: 16)
    }

    /// Checks every checksum of `file` unless this record already holds it, then records it.
    /// Returns whether the checks ran.
    @discardableResult
    public func verify(_ file: SKMFile) throws -> Bool {
        let key = Self.key(of: file)
        if contains(key) { return false }
        try file.verify(release: true)
        insert(key)
        return true
    }

    func lines() -> [String] {
        guard let path, let d = try? InputFile.read(path, limit: 1 << 20) else { return [] }
        return String(decoding: d, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    public func contains(_ key: String) -> Bool { lines().contains(key) }

    /// Records a verified file (best effort: a read-only home just means verifying again next time).
    public func insert(_ key: String) {
        guard let path else { return }
        var l = lines().filter { $0 != key }
        l.append(key)
        if l.count > Self.capacity { l.removeFirst(l.count - Self.capacity) }
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tmp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: Data((l.joined(separator: "\n") + "\n").utf8)) else { return }
        if rename(tmp, path) != 0 { unlink(tmp) }
    }
}
