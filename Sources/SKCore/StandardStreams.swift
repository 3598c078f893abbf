#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writing to standard error and reading standard input without full Foundation's FileHandle.
public enum StandardStreams {
    /// Writes `text` to standard error, unbuffered, all of it (retrying short writes and EINTR),
    /// after flushing standard output, so that the two stay in order when they share a log.
    public static func error(_ text: String) {
        fflush(stdout)
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { raw in
            var p = raw.baseAddress!, left = raw.count
            while left > 0 {
                let n = write(2, p, left)
                if n < 0 { if errno == EINTR { continue }; return }
                p += n
                left -= n
            }
        }
    }

    /// All of standard input (up to `limit` bytes; nil when it holds more, or on a read error).
    public static func readInput(limit: Int) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { return out }
            out.append(contentsOf: buffer[0..<n])
            if out.count > limit { return nil }
        }
    }
}
