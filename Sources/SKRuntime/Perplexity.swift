#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
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
    /// Against a base model (`--kl-base`): the mean KL divergence KL(base ‖ model) over the scored
    /// tokens, in nats, its 99th percentile, the fraction of tokens whose most likely next token is
    /// the same, and the base's own perplexity, as llama-perplexity's --kl-divergence reports.
    public var klMean: Double?
    public var klP99: Double?
    public var top1Agreement: Double?
    public var basePPL: Double?
}

public enum PerplexityRunner {
    /// - Parameter streamChunk: nil scores a window in one batch (full attention, full cache).
    ///   With a value, the window is a stream: the unscored first half enters as prefill chunks
    ///   and the scored tokens go through the decode path `streamChunk` at a time (1: exactly the
    ///   one-token path of generation, with the policy evicting as it would there).
    public static func run(session: Session, tokens: [Int], ctx: Int, maxChunks: Int?, bos: Int?, streamChunk: Int? = nil,
                           base: Session? = nil, progress: ((Int, Int, Double) -> Void)? = nil) throws -> PerplexityResult {
        let available = tokens.count / ctx
        guard available >= 2 else {
            throw SinkKitError(.invalidArgument, "the text has \(tokens.count) tokens: at least two windows of --ctx \(ctx) (\(2 * ctx) tokens) are needed")
        }
        let chunks = min(available, maxChunks ?? available)
        let first = ctx / 2
        let vocab = session.model.config.vocabSize
        var nll = 0.0, count = 0
        var kls: [Double] = [], agree = 0, baseNLL = 0.0
        if let b = base, b.model.config.vocabSize != vocab {
            throw SinkKitError(.invalidArgument, "--kl-base has a vocabulary of \(b.model.config.vocabSize), the model \(vocab)")
        }
        let start = Date()
        for c in 0..<chunks {
            var window = Array(tokens[(c * ctx)..<((c + 1) * ctx)])
            if let b = bos { window[0] = b }
            session.reset()
            var baseRows: [Float] = []
            if let b = base {
                b.reset()
                baseRows = try b.forward(window, logitsFor: Array(first..<(ctx - 1)))
            }
            func score(_ logits: [Float], rows: [Int]) {
                for (k, j) in rows.enumerated() {
                    let row = logits[(k * vocab)..<((k + 1) * vocab)]
                    let lse = logSumExp(row)
                    nll += lse - Double(row[row.startIndex + window[j + 1]])
                    count += 1
                    guard base != nil else { continue }
                    let r = j - first
                    let b = baseRows[(r * vocab)..<((r + 1) * vocab)]
                    let blse = logSumExp(b)
                    baseNLL += blse - Double(b[b.startIndex + window[j + 1]])
                    var kl = 0.0
                    for i in 0..<vocab {
                        let lp = Double(b[b.startIndex + i]) - blse
                        kl += exp(lp) * (lp - (Double(row[row.startIndex + i]) - lse))
                    }
                    kls.append(max(0, kl))
                    if argmax(b) == argmax(row) { agree += 1 }
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
        var r = PerplexityResult(ppl: exp(nll / Double(count)), tokens: count, chunks: chunks, ctx: ctx, nll: nll,
                                 seconds: Date().timeIntervalSince(start))
        if base != nil {
            r.klMean = kls.reduce(0, +) / Double(max(1, kls.count))
            r.klP99 = kls.sorted()[min(kls.count - 1, Int(Double(kls.count) * 0.99))]
            r.top1Agreement = Double(agree) / Double(max(1, count))
            r.basePPL = exp(baseNLL / Double(count))
        }
        return r
    }

    static func logSumExp(_ row: ArraySlice<Float>) -> Double {
        var mx = -Float.infinity
        for v in row { mx = max(mx, v) }
        var sum = 0.0
        for v in row { sum += exp(Double(v - mx)) }
        return Double(mx) + log(sum)
    }

    static func argmax(_ row: ArraySlice<Float>) -> Int {
        var best = row.startIndex
        for i in row.indices where row[i] > row[best] { best = i }
        return best
    }
}
