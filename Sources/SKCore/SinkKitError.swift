/// The one error type every SinkKit library throws. Libraries never print or exit: the
/// command-line tools turn these into messages and a non-zero exit code.
///
/// Every message says what went wrong, where (file, tensor, key) and what was expected.
public struct SinkKitError: Error, CustomStringConvertible, Equatable {
    /// Broad category, so tests and callers can match on the rule that fired.
    public enum Kind: String, Sendable {
        case io                 // a file could not be opened, read, written or renamed
        case truncated          // a file ends before the data its header describes
        case malformedHeader    // a header that is not what the format requires
        case unsupportedDType   // a dtype we do not know or cannot convert
        case layout             // offsets that overlap, leave gaps or run past the buffer
        case overflow           // sizes whose arithmetic overflows
        case config             // a missing or invalid config field
        case shapeMismatch      // a tensor whose shape disagrees with config or adapter
        case adapter            // an adapter that is invalid or aimed at another model
        case refused            // a valid input we refuse to merge (e.g. layer_replication)
        case pickle             // a torch pickle we refuse to read
        case nonFinite          // NaN or Inf in a result
        case checksum           // stored and computed checksums differ
        case outputExists       // an output that exists and --force was not given
        case invalidArgument    // a bad command-line value
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// The process exit status for this error (`ExitStatus`).
    public var exitStatus: ExitStatus {
        switch kind {
        case .io: return .io
        case .outputExists, .invalidArgument: return .usage
        default: return .input
        }
    }
}

/// The exit statuses of `skconv` and `skrun`, one table for every command (README "Exit status").
public enum ExitStatus: Int32, Sendable {
    /// Done.
    case success = 0
    /// A bad flag or value, a missing --force, a request the inputs cannot satisfy (a prompt longer
    /// than the context): the command line must change.
    case usage = 2
    /// An input file is malformed, inconsistent or of a kind SinkKit does not support: the file
    /// must change.
    case input = 3
    /// A file could not be opened, read, written or renamed (missing, permissions, full disk).
    case io = 4
    /// SIGINT (130), SIGTERM (143) and SIGHUP (129) end the process with 128 + the signal.
    case interrupted = 130
}
