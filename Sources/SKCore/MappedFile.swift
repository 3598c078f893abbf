#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only, private memory mapping of a whole file.
///
/// Readers hand out views into it lazily; nothing is copied until a tensor is asked for.
/// `release(offset:count:)` tells the kernel we are done with a range, so a converter that
/// walks a checkpoint tensor by tensor keeps about one tensor resident, not the model.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    public let base: UnsafeRawPointer?
    /// Device, inode, size, modification and status-change times of the file that was mapped:
    /// what identifies this content without reading it (see `VerifiedFiles`).
    public let identity: String
    /// A copy in memory (`init(bytes:path:)`), not a mapping.
    private let inMemory: Bool

    public init(path: String) throws {
        self.path = path
        inMemory = false
        let (fd, size) = try InputFile.open(path)
        defer { close(fd) }
        self.size = size
        var st = stat()
        _ = fstat(fd, &st)
        identity = "\(st.st_dev) \(st.st_ino) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec)"
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        if p == MAP_FAILED || p == nil {
            throw SinkKitError(.io, "\(path): mmap of \(size) bytes failed (\(String(cString: strerror(errno))))")
        }
        base = UnsafeRawPointer(p!)
    }

    /// Bytes held in memory and read through the same interface (fuzzing, tests): `path` only
    /// names them in messages.
    public init(bytes: UnsafeRawBufferPointer, path: String) {
        self.path = path
        inMemory = true
        size = bytes.count
        identity = "memory"
        if bytes.count == 0 {
            base = nil
        } else {
            let p = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
            p.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            base = UnsafeRawPointer(p)
        }
    }

    deinit {
        guard let b = base else { return }
        if inMemory { UnsafeMutableRawPointer(mutating: b).deallocate() } else { munmap(UnsafeMutableRawPointer(mutating: b), size) }
    }

    /// A bounds-checked view of `count` bytes at `offset`.
    public func bytes(offset: Int, count: Int) throws -> UnsafeRawBufferPointer {
        let (end, o) = offset.addingReportingOverflow(count)
        guard !o, offset >= 0, count >= 0, end <= size else {
            throw SinkKitError(.truncated, "\(path): range [\(offset), \(offset &+ count)) lies outside the file (\(size) bytes)")
        }
        guard let b = base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: b + offset, count: count)
    }

    /// Drops the resident pages of a range (whole pages inside it only); reading it again
    /// simply faults them back in from the file.
    public func release(offset: Int, count: Int) {
        guard let b = base, count > 0, !inMemory else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset + page - 1) / page * page
        let end = min(size, offset + count) / page * page
        if end > start {
            madvise(UnsafeMutableRawPointer(mutating: b + start), end - start, MADV_DONTNEED)
        }
    }
}
