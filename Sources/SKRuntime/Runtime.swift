#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import SKCore
import SKTokenizer

/// A loaded model with its tokenizer: what `skrun` opens.
public final class Runtime {
    public let model: LlamaModel
    public let tokenizer: Tokenizer

    /// `threads`: workers for the load (nil: every core).
    public init(path: String, integrity: Integrity = .checkOnce, threads: Int? = nil) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw SinkKitError(.io, "\(path): no such model file")
        }
        model = try LlamaModel(path: path, integrity: integrity, threads: threads)
        tokenizer = try Tokenizer(spec: try TokenizerSpec(metadata: model.file.metadata, path: path))
        guard tokenizer.vocab.count <= model.config.vocabSize else {
            throw SinkKitError(.config, "\(path): the tokenizer has \(tokenizer.vocab.count) tokens but vocab_size is \(model.config.vocabSize)")
        }
        model.file.dropMetadata(["tokenizer.vocab", "tokenizer.merges"])   // the tokenizer has its own tables
    }

    /// Whether encoding adds BOS (the post-processor's template or tokenizer_config's rule).
    public var addsBOS: Bool { tokenizer.encode("", addSpecialTokens: true).first.map { $0 == tokenizer.bosId } ?? false }

    /// Stop tokens: the config's EOS ids and the tokenizer's EOS token.
    public var stopTokens: Set<Int> {
        var s = Set(model.config.eosTokenIds)
        if let e = tokenizer.eosId { s.insert(e) }
        return s
    }

    /// Bytes a KV cache of `context` tokens needs (keys and values of `dtype`; kivi4 with its
    /// groups' scales and unsealed keys).
    public func kvBytes(context: Int, dtype: KVDType = .f32) -> Int {
        let c = model.config
        guard let head = dtype.headBytes(slots: context, headDim: c.headDim) else { return Int.max }
        var total = 1
        for f in [c.numLayers, c.numKVHeads, head] {
            let (p, o) = total.multipliedReportingOverflow(by: f)
            if o { return Int.max }
            total = p
        }
        return total
    }

    /// Refuses a context whose KV cache would not fit in the memory available now.
    public func checkContextFits(_ context: Int, dtype: KVDType = .f32) throws {
        let need = kvBytes(context: context, dtype: dtype)
        if let avail = Self.availableMemory(), need > avail {
            throw SinkKitError(.invalidArgument, "--ctx \(context) needs \(need / 1_000_000) MB of KV cache but only \(avail / 1_000_000) MB of memory is available")
        }
    }

    static func availableMemory() -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }
}
