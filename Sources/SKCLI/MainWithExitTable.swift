import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SKCore

extension ParsableCommand {
    /// `main()` with SinkKit's exit table (`ExitStatus`) instead of ArgumentParser's: usage errors
    /// (a bad flag or value) exit 2, not 64; `--help` and `--version` exit 0; a command's own
    /// `ExitCode` passes through.
    public static func mainWithExitTable() -> Never {
        do {
            var command = try parseAsRoot()
            try command.run()
            Glibc.exit(ExitStatus.success.rawValue)
        } catch let code as ExitCode {
            Glibc.exit(code.rawValue)
        } catch {
            if exitCode(for: error) == .success {
                print(fullMessage(for: error))
                Glibc.exit(ExitStatus.success.rawValue)
            }
            StandardStreams.error(fullMessage(for: error) + "\n")
            Glibc.exit(ExitStatus.usage.rawValue)
        }
    }
}
