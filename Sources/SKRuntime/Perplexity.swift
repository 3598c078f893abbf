import Foundation
import SKCore

/// llama.cpp's `llama-perplexity` protocol, so numbers compare directly: non-overlapping windows
/// of `ctx` tokens; when the tokenizer adds BOS, each window's first token is overwritten with
/// BOS; the last `ctx − 1 − ctx/2` predictions of each window are scored; at least two windows.
public struct PerplexityResult {
    public var ppl: Double
    public var tokens: Int
    public var chunks: Int
    public var ctx: Int
    public var nll: Double
    public var seconds: Double
}

public enum PerplexityRunner {
    /// - Parameter streamChunk: nil scores a window in one batch (full attention, full cache).
    ///   With a value, the window is a stream: the unscored first half enters as prefill chunks
    ///   and the scored tokens go through the decode path `streamChunk` at a time (1: exactly the
    ///   one-token path of generation, with the policy evicting as it would there).
    public static func run(session: Session, tokens: [Int], ctx: Int, maxChunks: Int?, bos: Int?, streamChunk: Int? = nil,
                           progress: ((Int, Int, Double) -> Void)? = nil) throws -> PerplexityResult {
        let available = tokens.count / ctx
        guard available >= 2 else {
            throw SinkKitError(.invalidArgument, "the text has \(tokens.count) tokens: at least two windows of --ctx \(ctx) (\(2 * ctx) tokens) are needed")
        }
        let chunks = min(available, maxChunks ?? available)
        let first = ctx / 2
        let vocab = session.model.config.vocabSize
        var nll = 0.0, count = 0
        let start = Date()
        for c in 0..<chunks {
            var window = Array(tokens[(c * ctx)..<((c + 1) * ctx)])
            if let b = bos { window[0] = b }
            session.reset()
            func score(_ logits: [Float], rows: [Int]) {
                for (k, j) in rows.enumerated() {
                    let row = logits[(k * vocab)..<((k + 1) * vocab)]
                    var mx = -Float.infinity
                    for v in row { mx = max(mx, v) }
                    var sum = 0.0
                    for v in row { sum += exp(Double(v - mx)) }
                    nll += (Double(mx) + log(sum)) - Double(row[row.startIndex + window[j + 1]])
                    count += 1
                }
            }
            if let step = streamChunk {
                // prefix [0, first] as prefill; its last position predicts the first scored token
                score(try session.forward(Array(window[0...first]), logitsFor: [first]), rows: [first])
                var j = first + 1
                while j < ctx - 1 {
                    let end = min(ctx - 1, j + step)
                    let rows = Array(j..<end)
                    score(try session.forward(Array(window[j..<end]), logitsFor: rows.map { $0 - j }), rows: rows)
                    j = end
                }
            } else {
                let rows = Array(first..<(ctx - 1))
                score(try session.forward(window, logitsFor: rows), rows: rows)
            }
            progress?(c + 1, chunks, exp(nll / Double(count)))
        }
        return PerplexityResult(ppl: exp(nll / Double(count)), tokens: count, chunks: chunks, ctx: ctx, nll: nll,
                                seconds: Date().timeIntervalSince(start))
    }
}
