import ArgumentParser
import Foundation
import SKCore
import SKGGUF
import SKMerge
import SKModel
import SKSafetensors

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors and metadata of an SKM file (--verify checks every checksum), a GGUF file, a safetensors file or a Hugging Face directory.")

    @Argument(help: "An .skm, .gguf or .safetensors file, or a model directory.")
    var path: String

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Flag(help: "SKM: check the header and every tensor checksum.")
    var verify = false

    func run() throws {
        try runReportingErrors {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                throw SinkKitError(.io, "\(path): no such file or directory")
            }
            if !isDir.boolValue, try InspectSKM.isSKM(path) {
                try InspectSKM.run(path: path, verify: verify, json: json)
                return
            }
            if verify { throw SinkKitError(.invalidArgument, "--verify applies to SKM files; \(path) is not one") }
            if !isDir.boolValue, GGUFFile.isGGUF(path) {
                try inspectGGUF()
                return
            }
            let source: TensorSource
            var metadata: [String: String] = [:]
            var config: LlamaConfig?
            if isDir.boolValue {
                let ck = try ShardedCheckpoint(directory: path)
                source = ck
                for s in ck.shards { metadata.merge(s.metadata) { a, _ in a } }
                if FileManager.default.fileExists(atPath: path + "/config.json") { config = try LlamaConfig(path: path + "/config.json") }
            } else {
                let f = try SafetensorsFile(path: path)
                source = f
                metadata = f.metadata
            }
            let infos = source.tensorNames.sorted().compactMap { source.info($0) }
            if json {
                var d: [String: Any] = ["tensors": infos.map { ["name": $0.name, "dtype": $0.dtype.rawValue, "shape": $0.shape, "bytes": $0.byteCount] },
                                        "metadata": metadata]
                if let c = config { d["config"] = summary(c) }
                let data = try JSONWriter.data(d, pretty: true)
                print(String(decoding: data, as: UTF8.self))
                return
            }
            let w = max(4, infos.map(\.name.count).max() ?? 4)
            print("name".padding(toLength: w, withPad: " ", startingAt: 0) + "  dtype  shape                size")
            var total = 0
            for i in infos {
                let shape = "[" + i.shape.map(String.init).joined(separator: ", ") + "]"
                print(i.name.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + i.dtype.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0) +
                      "  " + shape.padding(toLength: 19, withPad: " ", startingAt: 0) + "  " + formatBytes(i.byteCount))
                total += i.byteCount
            }
            print("\(infos.count) tensors, \(formatBytes(total)), \(infos.reduce(0) { $0 + $1.elementCount }) parameters")
            for k in metadata.keys.sorted() { print("metadata \(k): \(metadata[k]!)") }
            if let c = config {
                for (k, v) in summary(c).sorted(by: { $0.key < $1.key }) { print("config \(k): \(v)") }
            }
        }
    }

    /// A GGUF file: its tensors in ggml types, its metadata (arrays summarised), and the config and
    /// tokenizer skconv would read from it (or why it would not).
    func inspectGGUF() throws {
        let g = try GGUFFile(path: path)
        func show(_ v: GGUFFile.Value) -> Any {
            switch v {
            case .uint(let x): return x
            case .int(let x): return x
            case .float(let x): return x
            case .bool(let b): return b
            case .string(let s): return s.count > 120 ? String(s.prefix(120)) + "… (\(s.utf8.count) bytes)" : s
            case .array(let a): return a.count > 8 ? "[\(a.count) values]" : a.map { "\(show($0))" }.joined(separator: ", ")
            }
        }
        var readable: [String: Any] = [:], problem: String?
        do {
            let base = try GGUFBase(g)
            readable["config"] = base.config
            readable["tokenizer_pre"] = try GGUFTokenizer.spec(g).preTokenizerJSON
        } catch let e as SinkKitError { problem = e.message }
        if json {
            var d: [String: Any] = [
                "version": g.version,
                "tensors": g.tensors.map { ["name": $0.name, "type": GGUFFile.typeName($0.type), "shape": $0.shape, "bytes": $0.byteCount] as [String: Any] },
                "metadata": Dictionary(uniqueKeysWithValues: g.metadataKeys.map { ($0, show(g.metadata[$0]!)) }),
            ]
            if let c = readable["config"] { d["config"] = c }
            if let p = problem { d["not_readable"] = p }
            print(String(decoding: try JSONWriter.data(d, pretty: true), as: UTF8.self))
            return
        }
        let w = max(4, g.tensors.map(\.name.count).max() ?? 4)
        print("name".padding(toLength: w, withPad: " ", startingAt: 0) + "  type   shape                size")
        for t in g.tensors {
            let shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
            print(t.name.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + GGUFFile.typeName(t.type).padding(toLength: 5, withPad: " ", startingAt: 0) +
                  "  " + shape.padding(toLength: 19, withPad: " ", startingAt: 0) + "  " + formatBytes(t.byteCount))
        }
        print("GGUF v\(g.version): \(g.tensors.count) tensors, \(formatBytes(g.tensors.reduce(0) { $0 + $1.byteCount })), \(g.tensors.reduce(0) { $0 + $1.elementCount }) parameters")
        for k in g.metadataKeys { print("metadata \(k): \(show(g.metadata[k]!))") }
        if let p = problem { print("skconv cannot convert it: \(p)") }
        else { print("skconv reads it as a llama checkpoint (skconv quantize --model \(path) …)") }
    }

    func summary(_ c: LlamaConfig) -> [String: Any] {
        var d: [String: Any] = [
            "model_type": c.modelType, "hidden_size": c.hiddenSize, "intermediate_size": c.intermediateSize,
            "num_hidden_layers": c.numHiddenLayers, "num_attention_heads": c.numAttentionHeads,
            "num_key_value_heads": c.numKeyValueHeads, "head_dim": c.headDim, "vocab_size": c.vocabSize,
            "max_position_embeddings": c.maxPositionEmbeddings, "trained_context": c.trainedContext,
            "rope_theta": c.ropeTheta, "rms_norm_eps": c.rmsNormEps, "tie_word_embeddings": c.tieWordEmbeddings,
            "attention_bias": c.attentionBias,
        ]
        if let s = c.ropeScaling { d["rope_scaling"] = "\(s.type) factor \(s.factor ?? 1)" }
        return d
    }
}
