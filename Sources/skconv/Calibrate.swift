import ArgumentParser
import Foundation
import SKCLI
import SKCore
import SKRuntime
import SKSafetensors

struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Collect an importance matrix (the mean square of every input channel of every linear layer) by running a model on a text; `quantize --imatrix` uses it.")

    @Argument(help: "The model as an .skm file (f32 or f16 gives the cleanest statistics; quantize --type f32 makes one).")
    var model: String

    @Option(name: [.customShort("f"), .long], help: "Calibration text (UTF-8); keep it apart from any evaluation text.", completion: .file())
    var text: String

    @Option(help: "Output file (.imatrix, a safetensors file).")
    var output: String

    @Option(name: [.customShort("c"), .long], help: "Window size in tokens.") var ctx = 512
    @Option(help: "Stop after K windows (default: all).") var chunks: Int?
    @Option(name: [.customShort("t"), .long], help: "Threads.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Replace an existing output.") var force = false

    func validate() throws {
        guard (16...Limits.maxTokens).contains(ctx) else { throw ValidationError("--ctx must be between 16 and \(Limits.maxTokens) (got \(ctx))") }
        if let c = chunks, !(1...Limits.maxTokens).contains(c) { throw ValidationError("--chunks must be between 1 and \(Limits.maxTokens) (got \(c))") }
        guard (1...Limits.maxThreads).contains(threads) else { throw ValidationError("--threads must be between 1 and \(Limits.maxThreads) (got \(threads))") }
    }

    func run() throws {
        try runReportingErrors {
            let target = try OutputTarget(output, kind: .file, inputs: [model, text], force: force)
            let data = try InputFile.read(text, limit: 1 << 30)
            guard let s = String(data: data, encoding: .utf8) else { throw SinkKitError(.invalidArgument, "\(text) is not UTF-8 text") }
            let rt = try Runtime(path: model)
            let tokens = rt.tokenizer.encode(s, addSpecialTokens: true)
            let windows = min(tokens.count / ctx, chunks ?? Int.max)
            guard windows >= 1 else { throw SinkKitError(.invalidArgument, "\(text) has \(tokens.count) tokens, less than one --ctx \(ctx) window") }
            let session = try Session(model: rt.model, context: ctx, threads: threads)
            let stats = ActivationStatistics()
            session.activationStatistics = stats
            let start = Date()
            let progress = ProgressLine(label: "calibrate")
            let bos = rt.addsBOS ? rt.tokenizer.bosId : nil
            for w in 0..<windows {
                var window = Array(tokens[(w * ctx)..<((w + 1) * ctx)])
                if let b = bos { window[0] = b }
                session.reset()
                _ = try session.forward(window, logitsFor: Array((ctx / 2)..<ctx))
                progress.update(done: w + 1, total: windows, detail: "windows")
            }
            progress.finish()
            let means = stats.meanSquares
            let record: [String: Any] = [
                "tool": "skconv calibrate", "model": URL(fileURLWithPath: model).lastPathComponent,
                "model_header_crc32": String(format: "%08x", rt.model.file.headerCRC),
                "text": URL(fileURLWithPath: text).lastPathComponent, "text_sha256": try SHA256.hexDigest(ofFile: text),
                "tokens": windows * ctx, "windows": windows, "ctx": ctx, "statistic": "mean of x² per input column",
            ]
            let json = try JSONWriter.string(record)
            let names = means.keys.sorted()
            try target.write { tmp in
                let w = try SafetensorsWriter(path: tmp, entries: names.map { .init(name: $0, dtype: .F32, shape: [means[$0]!.count]) },
                                              metadata: ["format": "pt", "sinkkit.imatrix": json])
                for n in w.order.map(\.name) { try w.write(name: n, tensor: Tensor(shape: [means[n]!.count], data: means[n]!)) }
                try w.finish()
            }
            for n in target.notes { eprint("warning: \(n)") }
            eprint("\(output): \(names.count) weights, \(windows * ctx) tokens, \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        }
    }
}
