import Foundation
import SKCore
import SKFormat
import SKGGUF
import SKMerge
import SKModel
import SKTokenizer

/// `skconv export`: an SKM file as a GGUF file llama.cpp, ollama and LM Studio load, with its
/// tokenizer and chat template. Every SKM type with a ggml counterpart is written without
/// re-quantizing: f32 as F32, f16 as F16, and at group 32 int8 as Q8_0, int4-sym as Q4_0, int4
/// as Q4_1, int5-sym as Q5_0 (the same values; Q5_0 orders its bytes differently). Tensor names
/// become llama.cpp's and the rows of q/k are interleaved as llama.cpp's converter does for its
/// RoPE kernel. Anything without a GGUF form is refused by name before a byte is written.
public enum GGUFExporter {
    public struct Report {
        public var tensors = 0
        public var fileBytes = 0
        /// ggml type name -> tensors.
        public var types: [String: Int] = [:]
        public var fileType = ""
        public var notes: [String] = []
    }

    /// llama.cpp's name of a transformers tensor name (llama architecture).
    static func ggufName(_ name: String) -> String? { GGUFNames.llamaCpp(name) }

    /// The divisor of each RoPE frequency (llama.cpp's `rope_freqs.weight`: angle = p·θ^(−2i/d) / f_i)
    /// for Llama 3's rule, or for longrope whose short and long factors are equal with no attention
    /// factor (what SinkKit reads rope_freqs as); nil for any other scaling.
    public static func ropeFreqFactors(_ c: LlamaConfig) -> [Float]? {
        guard let rs = c.ropeScaling else { return nil }
        let half = c.headDim / 2
        switch rs.type {
        case "llama3":
            guard let factor = rs.factor, let lo = rs.lowFreqFactor, let hi = rs.highFreqFactor, let old = rs.originalMaxPositionEmbeddings else { return nil }
            return (0..<half).map { i in
                let wavelen = 2 * Double.pi * pow(c.ropeTheta, Double(2 * i) / Double(c.headDim))
                if wavelen < Double(old) / hi { return 1 }
                if wavelen > Double(old) / lo { return Float(factor) }
                let smooth = (Double(old) / wavelen - lo) / (hi - lo)
                return Float(1 / ((1 - smooth) / factor + smooth))
            }
        case "longrope":
            guard let s = rs.shortFactor, s == rs.longFactor, rs.attentionFactor == 1 else { return nil }
            return s.map(Float.init)
        default:
            return nil
        }
    }

    /// ggml type and llama.cpp's file type (LLAMA_FTYPE_*) of an SKM tensor type: f32, f16, and the
    /// block types `GGMLBlocks` pairs with ggml's at group 32.
    static func ggmlType(_ t: QuantType, group: Int) -> (type: Int32, ftype: UInt32, name: String)? {
        switch t {
        case .f32: return (0, 0, "F32")
        case .f16: return (1, 1, "F16")
        default:
            let ftypes: [Int32: UInt32] = [8: 7, 2: 2, 3: 3, 6: 8]   // MOSTLY_Q8_0, _Q4_0, _Q4_1, _Q5_0
            guard group == 32, let id = GGMLBlocks.ggmlType(of: t), let f = ftypes[id] else { return nil }
            return (id, f, GGUFFile.typeName(id))
        }
    }

    /// The ggml type a tensor is written as; refused by name when GGUF has none.
    static func requireGGMLType(_ t: SKMTensorInfo, path: String) throws -> (type: Int32, ftype: UInt32, name: String) {
        guard let g = ggmlType(t.type, group: t.group) else {
            throw SinkKitError(.refused, "\(path): tensor \(t.name) is \(t.type.userName) with blocks of \(t.group); GGUF holds int8, int4, int4-sym and int5-sym only in blocks of 32 (Q8_0, Q4_1, Q4_0, Q5_0): quantize with --group 32")
        }
        return g
    }

    public static func export(skm path: String, output: String, force: Bool) throws -> Report {
        let target = try OutputTarget(output, kind: .file, inputs: [path], force: force)
        let f = try SKMFile(path: path, verify: true)
        let arch = f.metadata["model.architecture"].flatMap { if case .string(let s) = $0 { return s }; return nil } ?? "llama"
        guard arch == LlamaConfig.architecture else {
            throw SinkKitError(.refused, "\(path): model.architecture \(arch) has no GGUF export (llama only)")
        }
        let config = try LlamaConfig(metadata: f.metadata, path: path)
        guard [ModelFamily.llama, .mistral, .phi3].contains(config.family) else {
            throw SinkKitError(.refused, "\(path): a \(config.family.name) model has no llama GGUF form (its block differs); not exported")
        }
        guard !config.attentionBias, !config.mlpBias else {
            throw SinkKitError(.refused, "\(path): attention or MLP biases have no place in a llama GGUF; not exported")
        }
        if let w = config.slidingWindow, w < config.maxPositionEmbeddings {
            throw SinkKitError(.refused, "\(path): a sliding window of \(w) has no llama GGUF key; llama.cpp would attend to the whole context")
        }
        var meta: [(String, GGUFWriter.Value)] = [
            ("general.architecture", .string("llama")),
            ("general.name", .string(URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent)),
            ("general.quantization_version", .u32(2)),
            ("llama.block_count", .u32(UInt32(config.numHiddenLayers))),
            ("llama.context_length", .u32(UInt32(config.maxPositionEmbeddings))),
            ("llama.embedding_length", .u32(UInt32(config.hiddenSize))),
            ("llama.feed_forward_length", .u32(UInt32(config.intermediateSize))),
            ("llama.attention.head_count", .u32(UInt32(config.numAttentionHeads))),
            ("llama.attention.head_count_kv", .u32(UInt32(config.numKeyValueHeads))),
            ("llama.rope.freq_base", .f32(Float(config.ropeTheta))),
            ("llama.attention.layer_norm_rms_epsilon", .f32(Float(config.rmsNormEps))),
            ("llama.rope.dimension_count", .u32(UInt32(config.headDim))),
            ("llama.vocab_size", .u32(UInt32(config.vocabSize))),
        ]
        if config.headDim * config.numAttentionHeads != config.hiddenSize {
            meta += [("llama.attention.key_length", .u32(UInt32(config.headDim))), ("llama.attention.value_length", .u32(UInt32(config.headDim)))]
        }
        var ropeFreqs: [Float]?
        if let rs = config.ropeScaling, rs.type != "default", rs.type != "none" {
            if let ff = Self.ropeFreqFactors(config) {
                ropeFreqs = ff   // Llama 3's rule as llama.cpp stores it: rope_freqs.weight
            } else {
                guard rs.type == "linear", let factor = rs.factor else {
                    throw SinkKitError(.refused, "\(path): RoPE scaling \(rs.type) is not exported (linear, llama3, or longrope without a long/short switch only)")
                }
                meta += [("llama.rope.scaling.type", .string("linear")), ("llama.rope.scaling.factor", .f32(Float(factor)))]
            }
        }
        meta += try tokenizerEntries(f, path: path)

        // Tensors: names, types and sizes decided before anything is written.
        var entries: [GGUFWriter.TensorEntry] = [], sources: [(SKMTensorInfo, GGUFWriter.TensorEntry, Bool)] = []
        var report = Report()
        var paramsByFtype: [UInt32: Int] = [:]
        for t in f.tensors {
            guard let name = ggufName(t.name) else {
                throw SinkKitError(.refused, "\(path): tensor \(t.name) has no llama GGUF name; not exported")
            }
            let g = try requireGGMLType(t, path: path)
            let qk = t.name.hasSuffix("q_proj.weight") || t.name.hasSuffix("k_proj.weight")   // rows reordered for llama.cpp's RoPE
            let e = GGUFWriter.TensorEntry(name: name, shape: t.shape, type: g.type, byteCount: t.rawBytes)
            entries.append(e)
            sources.append((t, e, qk))
            report.types[g.name, default: 0] += 1
            if t.shape.count == 2 && t.name != LlamaTensors.embed { paramsByFtype[g.ftype, default: 0] += t.rows * t.cols }
        }
        if let ff = ropeFreqs {
            let e = GGUFWriter.TensorEntry(name: "rope_freqs.weight", shape: [ff.count], type: 0, byteCount: 4 * ff.count)
            entries.append(e)
            report.types["F32", default: 0] += 1
        }
        let ftype = paramsByFtype.max { $0.value < $1.value }?.key ?? 0
        meta.insert(("general.file_type", .u32(ftype)), at: 2)
        report.fileType = ["0": "ALL_F32", "1": "MOSTLY_F16", "2": "MOSTLY_Q4_0", "3": "MOSTLY_Q4_1", "7": "MOSTLY_Q8_0", "8": "MOSTLY_Q5_0"]["\(ftype)"] ?? "\(ftype)"

        try target.write { tmp in
            let w = try GGUFWriter(path: tmp, metadata: meta, tensors: entries)
            for (t, _, qk) in sources {
                var bytes = [UInt8](repeating: 0, count: t.rawBytes)
                try f.withRawBytes(t) { src in
                    bytes.withUnsafeMutableBytes { dst in
                        if qk {
                            GGMLBlocks.copyQKRows(from: src.baseAddress!, to: dst.baseAddress!, rows: t.rows, rowBytes: t.rawBytes / t.rows,
                                                  headDim: config.headDim, toLlamaCpp: true)
                        } else {
                            dst.copyMemory(from: src)
                        }
                        if t.type == .int5Sym { GGMLBlocks.int5SymToQ5_0(dst) }
                    }
                }
                try w.write(bytes)
                report.tensors += 1
            }
            if let ff = ropeFreqs {
                try w.write(ff.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } })
                report.tensors += 1
            }
            try w.finish()
            report.fileBytes = InputFile.size(tmp) ?? 0
        }
        report.notes = target.notes
        return report
    }

    /// tokenizer.ggml.* from the SKM tokenizer: byte-level BPE with one of the pre-tokenizers
    /// llama.cpp names (GGUFTokenizer); the added tokens as control (special) or user-defined.
    /// The `tokenizer.ggml.pre` name the tokenizer is exported under; refused when it has none.
    static func exportablePre(_ spec: TokenizerSpec, path: String) throws -> String {
        guard spec.normalizerJSON == "null", !spec.byteFallback else {
            throw SinkKitError(.refused, "\(path): the tokenizer has a normalizer or byte fallback (SentencePiece-style), which SinkKit does not export to GGUF yet")
        }
        guard let pre = GGUFTokenizer.preName(preTokenizerJSON: spec.preTokenizerJSON) else {
            throw SinkKitError(.refused, "\(path): the tokenizer's pre-tokenizer is none of those llama.cpp names (smollm, gpt-2, llama-bpe, qwen2, deepseek-llm, deepseek-coder, falcon); not exported")
        }
        return pre
    }

    static func tokenizerEntries(_ f: SKMFile, path: String) throws -> [(String, GGUFWriter.Value)] {
        let spec = try TokenizerSpec(metadata: f.metadata, path: path)
        let pre = try exportablePre(spec, path: path)
        var types = [Int32](repeating: 1, count: spec.vocab.count)
        if let added = try StrictJSON.parse(Data(spec.addedTokensJSON.utf8), path: "added_tokens") as? [[String: Any]] {
            for a in added {
                guard let id = (a["id"] as? JSONNumber)?.intValue, id >= 0, id < types.count else { continue }
                types[id] = (a["special"] as? Bool ?? false) ? 3 : 4
            }
        }
        let ids = Dictionary(spec.vocab.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        var m: [(String, GGUFWriter.Value)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .strings(spec.vocab)),
            ("tokenizer.ggml.token_type", .i32s(types)),
            ("tokenizer.ggml.merges", .strings(spec.merges)),
        ]
        for (key, token) in [("bos_token_id", spec.bosToken), ("eos_token_id", spec.eosToken),
                             ("unknown_token_id", spec.unkTokenText), ("padding_token_id", spec.padToken)] {
            if !token.isEmpty, let id = ids[token] { m.append(("tokenizer.ggml." + key, .u32(UInt32(id)))) }
        }
        // Whether encoding adds BOS/EOS: what the post-processor's template does.
        let tok = try Tokenizer(spec: spec)
        let probe = tok.encode("a", addSpecialTokens: true), plain = tok.encode("a", addSpecialTokens: false)
        let addsBos = probe.count > plain.count && probe.first != plain.first
        let addsEos = probe.count > plain.count && probe.last != plain.last
        m += [("tokenizer.ggml.add_bos_token", .bool(addsBos)), ("tokenizer.ggml.add_eos_token", .bool(addsEos)),
              ("tokenizer.ggml.add_space_prefix", .bool(false))]
        if !spec.chatTemplate.isEmpty { m.append(("tokenizer.chat_template", .string(spec.chatTemplate))) }
        return m
    }
}

extension SKMConverter {
    /// `skconv quantize … --output FILE.gguf`: the SKM file is made under a temporary name beside
    /// the output (removed afterwards, and on SIGINT/SIGTERM/SIGHUP), then exported.
    public func runToGGUF(progress: QuantizeProgress? = nil) throws -> (QuantizeReport, GGUFExporter.Report) {
        let target = try OutputTarget(job.output, kind: .file, inputs: job.mergeJob.inputPaths, force: job.force)
        let tmp = try target.makeTemporary()
        defer {
            try? FileManager.default.removeItem(atPath: tmp)
            Interrupts.unregister(tmp)
        }
        var inner = job
        inner.output = tmp
        inner.force = true
        // What GGUF cannot hold (a tensor type or group it has no block for, a tokenizer without a
        // llama.cpp pre-tokenizer name) is refused once every tensor's type and the tokenizer are
        // decided, before any tensor is quantized.
        let report = try SKMConverter(job: inner).run(progress: progress) { infos, tokenizer, source in
            for t in infos { _ = try GGUFExporter.requireGGMLType(t, path: job.output) }
            let spec = try TokenizerSpec(metadata: Dictionary(tokenizer, uniquingKeysWith: { a, _ in a }), path: source)
            _ = try GGUFExporter.exportablePre(spec, path: source)
        }
        let exported = try GGUFExporter.export(skm: tmp, output: job.output, force: job.force)
        return (report, exported)
    }
}
