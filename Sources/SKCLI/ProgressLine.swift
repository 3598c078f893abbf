#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKCore

/// Progress of long work on standard error, with the time left estimated from the rate so far:
/// one line redrawn in place on a terminal; otherwise (a log, CI, a pipe) a line every few
/// seconds (`SINKKIT_PROGRESS_INTERVAL`, default 5) and one at the end. `quiet` prints nothing.
public final class ProgressLine {
    let label: String
    let quiet: Bool
    let tty = isatty(STDERR_FILENO) != 0
    let interval: Double
    let start = Date()
    var lastLine = Date.distantPast
    var drew = false

    public init(label: String, quiet: Bool = false) {
        self.label = label
        self.quiet = quiet
        interval = ProcessInfo.processInfo.environment["SINKKIT_PROGRESS_INTERVAL"].flatMap(Double.init) ?? 5
    }

    /// `done` of `total` units finished; `weightDone`/`weightTotal` (bytes, say) drive the time
    /// estimate when the units differ in size.
    public func update(done: Int, total: Int, detail: String, weightDone: Double? = nil, weightTotal: Double? = nil) {
        guard !quiet else { return }
        let now = Date(), elapsed = now.timeIntervalSince(start)
        let fraction: Double
        if let w = weightDone, let t = weightTotal, t > 0 { fraction = w / t } else { fraction = total > 0 ? Double(done) / Double(total) : 1 }
        let left = fraction > 0 && fraction < 1 ? elapsed / fraction * (1 - fraction) : 0
        let text = String(printf: "%@ %d/%d %@ | %.0f s elapsed, ~%.0f s left", label, done, total, detail, elapsed, left)
        if tty {
            StandardStreams.error("\r\u{1B}[2K" + text)
            drew = true
        } else if now.timeIntervalSince(lastLine) >= interval || done == total {
            StandardStreams.error(text + "\n")
            lastLine = now
        }
    }

    /// Ends the in-place line on a terminal.
    public func finish() { if drew { StandardStreams.error("\n"); drew = false } }
}
