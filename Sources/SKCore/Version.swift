import SKKernels

/// SinkKit's version: the release number and the commit the binary was built from.
public enum SinkKitVersion {
    public static let release = "0.2.0"
    public static var commit: String { String(cString: sk_build_commit()) }
    /// What `--version` prints: "0.2.0 (commit d52dde7)".
    public static var description: String { "\(release) (commit \(commit))" }
}
