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

/// Where a command writes, checked before anything is read or written, and written so that the
/// output appears whole or not at all:
///
/// - An output is never an input, inside one, or a directory holding one: paths are compared after
///   resolving symlinks (of the output's parent and of every input), and an existing output is
///   compared by device and inode with every input file (hard links).
/// - `--force` replaces only the same kind of thing: a file output replaces a regular file, never a
///   directory; a directory output replaces only a directory `replaceable` recognises (a merge
///   output: a previous `skconv merge` wrote it).
/// - Everything is written under a temporary name beside the destination,
///   `.NAME.tmp-PID-RANDOM`, then renamed into place. The temporary is registered with
///   `Interrupts`, so SIGINT, SIGTERM and SIGHUP remove it; one left by a process that died
///   (kill -9, a crash) is recognised by its dead PID and removed by the next run writing there.
public final class OutputTarget {
    public enum Kind: Sendable { case file, directory }

    /// The path as the user gave it (for messages).
    public let path: String
    public let kind: Kind
    public let force: Bool
    /// The destination with its parent's symlinks resolved.
    public let resolved: String
    let parent: String
    let name: String
    /// What was done on the way that the user should hear of (stale temporaries removed).
    public private(set) var notes: [String] = []

    /// - Parameters:
    ///   - inputs: every file or directory the command reads.
    ///   - replaceable: for a directory output, whether an existing directory may be replaced.
    public init(_ path: String, kind: Kind, inputs: [String], force: Bool, replaceable: ((String) -> Bool)? = nil) throws {
        self.path = path
        self.kind = kind
        self.force = force
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        let url = URL(fileURLWithPath: trimmed)
        name = url.lastPathComponent
        guard !trimmed.isEmpty, !name.isEmpty, name != ".", name != "..", name != "/" else {
            throw SinkKitError(.invalidArgument, "--output \(path) does not name a \(kind == .file ? "file" : "directory")")
        }
        let parentGiven = url.deletingLastPathComponent().path
        guard let p = Self.realPath(parentGiven) else {
            throw SinkKitError(.io, "--output \(path): the directory \(parentGiven) does not exist")
        }
        guard InputFile.isDirectory(p) else {
            throw SinkKitError(.io, "--output \(path): \(parentGiven) is not a directory")
        }
        parent = p == "/" ? "" : p
        resolved = parent + "/" + name

        // Never an input, inside one, or above one.
        let existing = InputFile.exists(resolved)
        var outputPaths = [resolved]
        if existing, let r = Self.realPath(resolved), r != resolved { outputPaths.append(r) }
        for input in inputs {
            guard let r = Self.realPath(input) else { continue }   // a missing input is its reader's error
            for o in outputPaths {
                if o == r { throw SinkKitError(.invalidArgument, "--output \(path) is the input \(input); inputs are never modified") }
                if o.hasPrefix(r + "/") { throw SinkKitError(.invalidArgument, "--output \(path) lies inside the input \(input); inputs are never modified") }
                if r.hasPrefix(o + "/") { throw SinkKitError(.invalidArgument, "--output \(path) contains the input \(input); inputs are never modified") }
            }
        }
        guard existing else { return }

        // An existing output: same file as no input (hard links), same kind, replaceable.
        if let id = InputFile.identity(resolved) {
            for input in inputs {
                for f in Self.filesOf(input) where InputFile.identity(f) == id {
                    throw SinkKitError(.invalidArgument, "--output \(path) is the same file as the input \(f) (a hard link); inputs are never modified")
                }
            }
        }
        guard force else { throw SinkKitError(.outputExists, "\(path) already exists (use --force to replace it)") }
        var st = stat()
        _ = lstat(resolved, &st)
        let isLink = (st.st_mode & S_IFMT) == S_IFLNK
        if !isLink { _ = stat(resolved, &st) }
        let isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
        switch kind {
        case .file:
            guard isLink || (st.st_mode & S_IFMT) == S_IFREG else {
                throw SinkKitError(.invalidArgument, "--output \(path) exists and is \(isDirectory ? "a directory" : "not a regular file"); a file output never replaces it, even with --force")
            }
        case .directory:
            guard isDirectory, !isLink, replaceable?(resolved) ?? false else {
                throw SinkKitError(.invalidArgument, "--output \(path) exists and is not a directory that skconv wrote; --force replaces only such a directory (remove it yourself if it is yours)")
            }
        }
    }

    /// `realpath(3)`: the path with every symlink, `.` and `..` resolved; nil when it does not exist.
    public static func realPath(_ p: String) -> String? {
        guard let r = realpath(p.isEmpty ? "." : p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    /// An input file, or the entries of an input directory (not recursive: model directories are flat).
    static func filesOf(_ input: String) -> [String] {
        guard InputFile.exists(input) else { return [] }
        guard InputFile.isDirectory(input) else { return [input] }
        return ((try? FileManager.default.contentsOfDirectory(atPath: input)) ?? []).map { input + "/" + $0 }
    }

    var temporaryPrefix: String { "." + name + ".tmp-" }

    /// Removes temporaries of this destination left by processes that no longer run, and
    /// creates a new temporary (an empty file or directory), registered for removal on SIGINT,
    /// SIGTERM and SIGHUP.
    public func makeTemporary() throws -> String {
        removeStaleTemporaries()
        let tmp = parent + "/" + temporaryPrefix + "\(getpid())-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        Interrupts.register(tmp)
        switch kind {
        case .file:
            let fd = Glibc.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                Interrupts.unregister(tmp)
                throw SinkKitError(.io, "cannot create \(tmp) (\(String(cString: strerror(errno))))")
            }
            _ = Glibc.close(fd)
        case .directory:
            guard mkdir(tmp, 0o755) == 0 else {
                Interrupts.unregister(tmp)
                throw SinkKitError(.io, "cannot create \(tmp) (\(String(cString: strerror(errno))))")
            }
        }
        return tmp
    }

    /// Temporaries `.NAME.tmp-PID-…` whose PID is no longer a running process.
    func removeStaleTemporaries() {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: parent.isEmpty ? "/" : parent) else { return }
        for e in entries where e.hasPrefix(temporaryPrefix) {
            let rest = e.dropFirst(temporaryPrefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = Int32(rest[..<dash]), pid > 0 else { continue }
            if pid == getpid() { continue }
            if kill(pid, 0) == 0 || errno != ESRCH { continue }   // alive (or not ours to judge)
            let p = parent + "/" + e
            if (try? FileManager.default.removeItem(atPath: p)) != nil {
                notes.append("removed \(p), a temporary left by process \(pid), which no longer runs")
            }
        }
    }

    /// Moves a finished temporary into place (replacing an existing destination: checked at init).
    public func commit(_ tmp: String) throws {
        defer { Interrupts.unregister(tmp) }
        if kind == .directory, InputFile.exists(resolved) {
            // A directory cannot be replaced atomically: the old one is moved aside, then removed.
            let old = tmp + ".old"
            Interrupts.register(old)
            defer { Interrupts.unregister(old) }
            guard rename(resolved, old) == 0 else {
                throw SinkKitError(.io, "cannot move \(path) aside to replace it (\(String(cString: strerror(errno))))")
            }
            guard rename(tmp, resolved) == 0 else {
                let e = errno
                _ = rename(old, resolved)
                throw SinkKitError(.io, "cannot rename \(tmp) to \(path) (\(String(cString: strerror(e))))")
            }
            try? FileManager.default.removeItem(atPath: old)
            return
        }
        guard rename(tmp, resolved) == 0 else {
            throw SinkKitError(.io, "cannot rename \(tmp) to \(path) (\(String(cString: strerror(errno))))")
        }
    }

    /// Removes a temporary after a failure.
    public func discard(_ tmp: String) {
        try? FileManager.default.removeItem(atPath: tmp)
        Interrupts.unregister(tmp)
    }

    /// Runs `body` with a fresh temporary, commits it when `body` returns, removes it when it throws.
    public func write<R>(_ body: (String) throws -> R) throws -> R {
        let tmp = try makeTemporary()
        do {
            let r = try body(tmp)
            try commit(tmp)
            return r
        } catch {
            discard(tmp)
            throw error
        }
    }
}
