#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file opened for writing through plain POSIX calls: every short write, ENOSPC or EIO
/// becomes a `SinkKitError` naming the file, and `close()` flushes to disk first.
public final class OutputFile {
    public let path: String
    private var fd: Int32
    public private(set) var bytesWritten: Int = 0

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw SinkKitError(.io, "\(path): cannot create (\(String(cString: strerror(errno))))") }
    }

    deinit { if fd >= 0 { _ = Glibc.close(fd) } }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = Glibc.write(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw SinkKitError(.io, "\(path): write failed after \(bytesWritten) bytes (\(String(cString: strerror(errno))))")
            }
            p += n
            left -= n
            bytesWritten += n
        }
        startWriteback()
    }

    /// Every 32 MiB written, asks the kernel to start writing that range back (POSIX_FADV_DONTNEED
    /// on dirty pages starts writeback without waiting), so the fsync in `close()` finds little
    /// left to do instead of the whole file.
    private var writebackFrom = 0
    private func startWriteback() {
        #if os(Linux)
        let step = 32 << 20
        if bytesWritten - writebackFrom >= step {
            _ = posix_fadvise(fd, off_t(writebackFrom), off_t(bytesWritten - writebackFrom), POSIX_FADV_DONTNEED)
            writebackFrom = bytesWritten
        }
        #endif
    }

    /// Writes at an absolute offset without moving the sequential position (for headers that
    /// are only known once the data is written).
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count, off = offset
        while left > 0 {
            let n = pwrite(fd, p, left, off_t(off))
            if n < 0 {
                if errno == EINTR { continue }
                throw SinkKitError(.io, "\(path): write at byte \(off) failed (\(String(cString: strerror(errno))))")
            }
            p += n; left -= n; off += n
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Flushes to stable storage and closes; errors (a full disk reported late) are thrown.
    public func close() throws {
        guard fd >= 0 else { return }
        let f = fd
        fd = -1
        if fsync(f) != 0 && errno != EINVAL {
            let e = errno
            _ = Glibc.close(f)
            throw SinkKitError(.io, "\(path): fsync failed (\(String(cString: strerror(e))))")
        }
        if Glibc.close(f) != 0 { throw SinkKitError(.io, "\(path): close failed (\(String(cString: strerror(errno))))") }
    }
}
