import ArgumentParser
import Foundation
import SKCore

/// `skconv`: checkpoint conversion. Thin: parses arguments, calls the libraries, prints.
struct SKConv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skconv",
        abstract: "Merge LoRA/SinkLoRA fine-tunes into Hugging Face LLaMA checkpoints (or GGUF files), quantize them into SKM files, export SKM as GGUF, inspect.",
        version: SinkKitVersion.description,
        subcommands: [Merge.self, Quantize.self, Calibrate.self, AdapterCommand.self, Export.self, Inspect.self])
}

/// Prints a library error as one line and exits with its status (`ExitStatus`); never a trap or a
/// stack trace.
func runReportingErrors(_ body: () throws -> Void) throws {
    BLASThreads.stopIdleWorkers()
    Interrupts.install()
    do {
        try body()
    } catch let e as SinkKitError {
        StandardStreams.error("error: \(e.message)\n")
        throw ExitCode(e.exitStatus.rawValue)
    }
}

func eprint(_ s: String) {
    StandardStreams.error(s + "\n")
}

func formatBytes(_ n: Int) -> String {
    n >= 1 << 20 ? String(format: "%.1f MB", Double(n) / 1e6) : n >= 1024 ? String(format: "%.1f kB", Double(n) / 1e3) : "\(n) B"
}
