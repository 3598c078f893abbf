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

/// Opening an input from a stranger: only regular files (a FIFO named `model.safetensors` would
/// block a reader forever, a device or a directory is never a model file), opened without blocking,
/// and read whole only up to a stated size.
public enum InputFile {
    /// What a path is, for messages ("a directory", "a FIFO", …); nil for a regular file.
    static func kindName(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }

    /// Opens `path` read-only (following symlinks) without blocking and returns the descriptor
    /// and size; anything but a regular file is refused before a byte is read.
    public static func open(_ path: String) throws -> (fd: Int32, size: Int) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw SinkKitError(.io, "\(path): cannot open (\(String(cString: strerror(errno))))")
        }
        if let k = kindName(st.st_mode) { throw SinkKitError(.io, "\(path) is \(k), expected a regular file") }
        let fd = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw SinkKitError(.io, "\(path): cannot open (\(String(cString: strerror(errno))))") }
        // The path may have changed between stat and open: check what was opened.
        guard fstat(fd, &st) == 0, kindName(st.st_mode) == nil else {
            _ = Glibc.close(fd)
            throw SinkKitError(.io, "\(path) is not a regular file")
        }
        return (fd, Int(st.st_size))
    }

    /// The whole content of a regular file of at most `limit` bytes.
    public static func read(_ path: String, limit: Int) throws -> Data {
        let (fd, size) = try open(path)
        defer { _ = Glibc.close(fd) }
        guard size <= limit else {
            throw SinkKitError(.io, "\(path) is \(size) bytes, more than the \(limit) bytes such a file may have")
        }
        var data = Data(count: size)
        var got = 0
        try data.withUnsafeMutableBytes { p in
            while got < size {
                let n = Glibc.read(fd, p.baseAddress! + got, size - got)
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    throw SinkKitError(.io, "\(path): read failed (\(String(cString: strerror(errno))))")
                }
                if n == 0 { break }
                got += n
            }
        }
        guard got == size else { throw SinkKitError(.io, "\(path) changed while it was read (\(got) of \(size) bytes)") }
        return data
    }

    /// Whether `path` names an existing regular file (following symlinks).
    public static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && kindName(st.st_mode) == nil
    }

    /// Whether `path` names an existing directory (following symlinks).
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The size in bytes of the file at `path` (following symlinks), nil when it does not exist.
    public static func size(_ path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int(st.st_size)
    }

    /// Whether `path` names anything (a dangling symlink counts).
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// The device and inode of `path` (following symlinks), nil when it does not exist.
    public static func identity(_ path: String) -> FileIdentity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }
}

/// Device and inode: what makes two paths the same file (hard links, symlinks, bind mounts).
public struct FileIdentity: Hashable, Sendable {
    public let device: UInt64
    public let inode: UInt64
}
