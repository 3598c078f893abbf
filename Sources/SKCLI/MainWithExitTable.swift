import ArgumentParser
import Foundation
import SKCore

extension ParsableCommand {
    /// `main()` with SinkKit's exit table (`ExitStatus`) instead of ArgumentParser's: usage errors
    /// (a bad flag or value) exit 2, not 64; `--help` and `--version` exit 0; a command's own
    /// `ExitCode` passes through.
    public static func mainWithExitTable() -> Never {
        do {
            var command = try parseAsRoot()
            try command.run()
            Foundation.exit(ExitStatus.success.rawValue)
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            if exitCode(for: error) == .success {
                print(fullMessage(for: error))
                Foundation.exit(ExitStatus.success.rawValue)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(ExitStatus.usage.rawValue)
        }
    }
}
