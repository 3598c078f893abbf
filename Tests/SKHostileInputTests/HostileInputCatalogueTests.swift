import Foundation
import SKCore
import SKFormat
import SKTestSupport
import XCTest

/// The catalogue of hostile and unlucky inputs (issue 12): every reader and both command-line
/// tools, each input with the specific error it must produce and the exit status of its class
/// (2 usage, 3 input, 4 I/O). For every case, nothing in its scratch directory may change: no
/// output, no temporary left behind, every input byte-identical (digests before and after).
final class HostileInputCatalogueTests: XCTestCase {
    struct Case {
        let name: String
        let tool: String
        let status: Int32
        let message: String
        let setup: (Scratch) throws -> [String]
    }

    static let usage: Int32 = 2, input: Int32 = 3, io: Int32 = 4

    // MARK: argument builders

    static func quantize(_ s: Scratch, _ model: String, type: String = "int8", extra: [String] = []) -> [String] {
        ["quantize", "--model", model, "--type", type, "--output", s.path("out.skm")] + extra
    }
    static func merge(_ s: Scratch, base: String, adapter: String? = nil, extra: [String] = []) -> [String] {
        ["merge", "--base", base] + (adapter.map { ["--adapter", $0] } ?? []) + ["--output", s.path("out")] + extra
    }
    static func generate(_ skm: String, _ extra: [String] = []) -> [String] {
        ["generate", skm, "-p", "hi", "-n", "2", "--temperature", "0"] + extra
    }

    /// A case on a copy of the tiny model whose config.json is edited.
    static func config(_ name: String, _ message: String, _ edit: @escaping (inout [String: Any]) -> Void) -> Case {
        Case(name: "config.json: " + name, tool: "skconv", status: input, message: message) { s in
            let m = try s.model()
            try s.json("model/config.json", edit)
            return quantize(s, m)
        }
    }

    /// A case on an SKM file rewritten with edited metadata.
    static func skmMeta(_ name: String, _ message: String, status: Int32 = input, args: [String] = [],
                        _ edit: @escaping (inout [(String, SKMValue)]) -> Void) -> Case {
        Case(name: "SKM metadata: " + name, tool: "skrun", status: status, message: message) { s in
            try s.rewriteSKM(try Scratch.tinySKM(), to: "m.skm", metadata: edit)
            return generate(s.path("m.skm"), args)
        }
    }

    /// A case whose SKM model.config and llama.* keys are both edited (a consistent hand-made file).
    static func skmConfig(_ name: String, _ message: String, _ edit: @escaping (inout [String: Any]) -> Void) -> Case {
        skmMeta("model.config " + name, message) { m in
            let text = m.first { $0.0 == "model.config" }!.1.string!
            var d = try! JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
            edit(&d)
            let json = String(decoding: try! JSONSerialization.data(withJSONObject: d, options: [.sortedKeys]), as: UTF8.self)
            Scratch.set(&m, "model.config", .string(json))
            if let n = d["num_hidden_layers"] as? Int { Scratch.set(&m, "llama.num_hidden_layers", .int(Int64(n))) }
        }
    }

    /// A case on a tokenizer.json edited as text (or JSON).
    static func tokenizer(_ name: String, _ message: String, status: Int32 = input, _ edit: @escaping (Scratch) throws -> Void) -> Case {
        Case(name: "tokenizer: " + name, tool: "skconv", status: status, message: message) { s in
            let m = try s.model()
            try edit(s)
            return quantize(s, m)
        }
    }

    /// A case on a safetensors file made by hand: `header` JSON and `data` bytes.
    static func safetensors(_ name: String, _ message: String, header: String, data: [UInt8] = [], headerLength: UInt64? = nil,
                            status: Int32 = input) -> Case {
        Case(name: "safetensors: " + name, tool: "skconv", status: status, message: message) { s in
            let h = Array(header.utf8)
            var b: [UInt8] = []
            withUnsafeBytes(of: (headerLength ?? UInt64(h.count)).littleEndian) { b += $0 }
            s.write("t.safetensors", bytes: b + h + data)
            return ["inspect", s.path("t.safetensors")]
        }
    }

    /// A case merging a hostile torch pickle as LongLoRA trainable params.
    static func pickle(_ file: String, _ message: String) -> Case {
        Case(name: "pickle: " + file, tool: "skconv", status: input, message: message) { s in
            let m = try s.model()
            try FileManager.default.copyItem(atPath: Fixture.root + "/Fixtures/hostile/" + file, toPath: s.path(file))
            return ["merge", "--base", m, "--trainable-params", s.path(file), "--output", s.path("out")]
        }
    }

    /// A case running `skrun --chat` on a file whose chat template is `template`.
    static func template(_ name: String, _ message: String, _ template: String) -> Case {
        Case(name: "chat template: " + name, tool: "skrun", status: usage, message: message) { s in
            try s.rewriteSKM(try Scratch.tinySKM(), to: "m.skm") { Scratch.set(&$0, "tokenizer.chat_template", .string(template)) }
            return ["generate", s.path("m.skm"), "--chat", "-p", "hi", "-n", "1"]
        }
    }

    static func skrunFlags(_ name: String, _ message: String, _ args: [String], command: String = "generate") -> Case {
        Case(name: "skrun \(command) " + name, tool: "skrun", status: usage, message: message) { s in
            let m = try s.skm()
            switch command {
            case "generate": return generate(m, args)
            case "bench": return ["bench", m, "--prompt-tokens", "4", "--gen-tokens", "2"] + args
            default:
                s.write("t.txt", String(repeating: "Hello world. ", count: 40))
                return ["perplexity", m, "--file", s.path("t.txt")] + args
            }
        }
    }

    static func skconvFlags(_ name: String, _ message: String, _ args: @escaping (Scratch, String) -> [String]) -> Case {
        Case(name: "skconv " + name, tool: "skconv", status: usage, message: message) { s in args(s, try s.model()) }
    }

    // MARK: the catalogue

    static let cases: [Case] = cliCases + skmCases + configCases + tokenizerCases + safetensorsCases + adapterCases + templateCases + outputCases

    static let cliCases: [Case] = [
        skrunFlags("--threads 0", "--threads must be between 1 and 1024", ["--threads", "0"]),
        skrunFlags("--threads 5000", "--threads must be between 1 and 1024", ["--threads", "5000"]),
        skrunFlags("--ctx 0", "--ctx must be between 1 and", ["--ctx", "0"]),
        skrunFlags("--ctx Int.max", "--ctx must be between 1 and", ["--ctx", "9223372036854775807"]),
        skrunFlags("--ctx beyond Int", "--ctx", ["--ctx", "99999999999999999999"]),
        skrunFlags("-n Int.max", "-n must be between -1 and", ["-n", "9223372036854775807"]),
        skrunFlags("-n -2", "-n must be between -1 and", ["-n=-2"]),
        skrunFlags("--sinks 2^40", "--sinks must be between 0 and", ["--sinks", "1099511627776"]),
        skrunFlags("--prefill-chunk 0", "--prefill-chunk must be between 1 and", ["--prefill-chunk", "0"]),
        skrunFlags("--prefill-chunk Int.max", "--prefill-chunk must be between 1 and", ["--prefill-chunk", "9223372036854775807"]),
        skrunFlags("--sf-group 3", "--sf-group must be an even number", ["--attention", "sf", "--sf-group", "3"]),
        skrunFlags("--sf-group Int.max", "--sf-group must be between 2 and", ["--attention", "sf", "--sf-group", "9223372036854775806"]),
        skrunFlags("--kv-budget 0", "expected a positive token count", ["--kv", "window", "--kv-budget", "0"]),
        skrunFlags("--kv-budget 150%", "a percentage must be in (0, 100]", ["--kv", "window", "--kv-budget", "150%"]),
        skrunFlags("--kv-budget Int.max", "at most 16777216 tokens", ["--kv", "h2o", "--kv-budget", "9223372036854775807"]),
        skrunFlags("--recent beyond the budget", "leaves no room", ["--kv", "h2o", "--kv-budget", "20", "--recent", "30"]),
        skrunFlags("--kv h2o without a budget", "needs --kv-budget", ["--kv", "h2o"]),
        skrunFlags("--kv unknown", "--kv must be", ["--kv", "lru"]),
        skrunFlags("--kv-dtype unknown", "--kv-dtype must be", ["--kv-dtype", "q3"]),
        skrunFlags("--positions unknown", "--positions must be", ["--positions", "relative"]),
        skrunFlags("--top-k -1", "--top-k must be between 0 and", ["--top-k=-1"]),
        skrunFlags("--top-p 2", "--top-p must be in (0, 1]", ["--top-p", "2"]),
        skrunFlags("--temperature nan", "--temperature must be", ["--temperature", "nan"]),
        skrunFlags("--repeat-penalty inf", "--repeat-penalty must be", ["--repeat-penalty", "inf"]),
        skrunFlags("--verify with --no-verify", "contradict", ["--verify", "--no-verify"]),
        skrunFlags("--prompt-tokens 0", "--prompt-tokens must be between 1 and", ["--prompt-tokens", "0"], command: "bench"),
        skrunFlags("--prompt-tokens Int.max", "--prompt-tokens must be between 1 and", ["--prompt-tokens", "9223372036854775807"], command: "bench"),
        skrunFlags("--gen-tokens 2^40", "--gen-tokens must be between 0 and", ["--gen-tokens", "1099511627776"], command: "bench"),
        skrunFlags("--report-every 0", "--report-every must be between 1 and", ["--report-every", "0"], command: "bench"),
        skrunFlags("--ctx 2", "--ctx must be between 4 and", ["--ctx", "2"], command: "perplexity"),
        skrunFlags("--chunks 0", "--chunks must be between 1 and", ["--chunks", "0"], command: "perplexity"),
        skrunFlags("--stream-chunk 0", "--stream-chunk must be between 1 and", ["--stream-chunk", "0"], command: "perplexity"),
        Case(name: "perplexity --file is a FIFO", tool: "skrun", status: io, message: "is a FIFO, expected a regular file") { s in
            s.mkfifo("fifo.txt"); return ["perplexity", try s.skm(), "--file", s.path("fifo.txt")]
        },
        Case(name: "perplexity --file is not UTF-8", tool: "skrun", status: usage, message: "is not UTF-8 text") { s in
            s.write("l1.txt", bytes: [0x63, 0x61, 0x66, 0xE9, 0x0A]); return ["perplexity", try s.skm(), "--file", s.path("l1.txt")]
        },
        Case(name: "perplexity --file missing", tool: "skrun", status: io, message: "cannot open") { s in
            ["perplexity", try s.skm(), "--file", s.path("nope.txt")]
        },
        skconvFlags("--context 0", "--context must be between 1 and") { s, m in quantize(s, m, extra: ["--context", "0"]) },
        skconvFlags("--context Int.max", "--context must be between 1 and") { s, m in quantize(s, m, extra: ["--context", "9223372036854775807"]) },
        skconvFlags("--threads 0", "--threads must be between 1 and") { s, m in quantize(s, m, extra: ["--threads", "0"]) },
        skconvFlags("--threads Int.max", "--threads must be between 1 and") { s, m in quantize(s, m, extra: ["--threads", "9223372036854775807"]) },
        skconvFlags("--type unknown", "unknown type int3") { s, m in quantize(s, m, type: "int3") },
        skconvFlags("--group 7", "group 7") { s, m in quantize(s, m, type: "int4", extra: ["--group", "7"]) },
        skconvFlags("--tensor-type without =", "--tensor-type") { s, m in quantize(s, m, extra: ["--tensor-type", "down_proj"]) },
        skconvFlags("merge --dtype f8", "--dtype must be") { s, m in merge(s, base: m, adapter: Fixture.adapter("plain"), extra: ["--dtype", "f8"]) },
        skconvFlags("merge with nothing to merge", "nothing to merge") { s, m in merge(s, base: m) },
    ]

    static let skmCases: [Case] = {
        func bytes(_ name: String, _ message: String, status: Int32 = input, args: [String] = [], _ edit: @escaping (Scratch) throws -> Void) -> Case {
            Case(name: "SKM bytes: " + name, tool: "skrun", status: status, message: message) { s in
                try s.skm(); try edit(s); return generate(s.path("model.skm"), args)
            }
        }
        func u64(_ b: [UInt8], _ at: Int) -> Int { Int(b[at..<(at + 8)].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.1) << (8 * UInt64($1.0)) }) }
        return [
            Case(name: "model file missing", tool: "skrun", status: io, message: "no such model file") { s in generate(s.path("none.skm")) },
            Case(name: "model is a directory", tool: "skrun", status: io, message: "is a directory, expected a regular file") { s in
                try FileManager.default.createDirectory(atPath: s.path("d.skm"), withIntermediateDirectories: false); return generate(s.path("d.skm"))
            },
            Case(name: "model is a FIFO", tool: "skrun", status: io, message: "is a FIFO, expected a regular file") { s in s.mkfifo("f.skm"); return generate(s.path("f.skm")) },
            Case(name: "model file empty", tool: "skrun", status: input, message: "too short for an SKM file") { s in s.write("e.skm", ""); return generate(s.path("e.skm")) },
            Case(name: "a safetensors file given to skrun", tool: "skrun", status: input, message: "bad magic") { s in
                generate(Fixture.base("llama-f32") + "/model.safetensors")
            },
            bytes("major version 2", "this file is SKM 2.0") { try $0.patch("model.skm", at: 8, [2, 0]) },
            bytes("byte-order tag", "byte-order tag") { try $0.patch("model.skm", at: 12, [1, 2, 3, 4]) },
            bytes("reserved header field", "reserved header field at byte 60") { try $0.patch("model.skm", at: 60, [1]) },
            bytes("flags with an unknown bit", "flags 0x2 has bits other than bit 0") { try $0.patch("model.skm", at: 52, [2]); try $0.fixHeaderCRC("model.skm") },
            bytes("flags say compressed, nothing is", "flags bit 0 says some tensor is compressed") { try $0.patch("model.skm", at: 52, [1]); try $0.fixHeaderCRC("model.skm") },
            bytes("header byte flipped", "header checksum mismatch") { try $0.patch("model.skm", at: 80, [0x5A]) },
            bytes("padding before the data section", "in the padding before the data section") { s in
                let b = try s.bytes("model.skm"), end = 64 + u64(b, 16), data = u64(b, 24)
                guard data > end else { throw SinkKitTestError("no padding in this file") }
                try s.patch("model.skm", at: data - 1, [7])
            },
            bytes("a tensor byte flipped (caught at load, no --verify)", "checksum mismatch") { try $0.patch("model.skm", at: -5, [0xEE]) },
            bytes("padding between tensors", "in the padding before tensor") { s in
                let f = try SKMFile(path: s.path("model.skm"))
                guard let t = f.tensors.first(where: { ($0.offset + $0.storedBytes) % 64 != 0 }) else { throw SinkKitTestError("no gap") }
                try s.patch("model.skm", at: f.dataOffset + t.offset + t.storedBytes, [1])
            },
            bytes("file truncated", "truncated") { s in let b = try s.bytes("model.skm"); s.write("model.skm", bytes: Array(b.dropLast(100))) },
            bytes("bytes appended", "the data section should end at byte") { s in s.write("model.skm", bytes: try s.bytes("model.skm") + [0, 0, 0]) },
            bytes("two metadata keys the same", "duplicate metadata key llama.vocab_size") { s in
                try s.patch("model.skm", at: try s.find("model.skm", Array("llama.rope_theta".utf8)), Array("llama.vocab_size".utf8))
                try s.fixHeaderCRC("model.skm")
            },
            bytes("a tensor's reserved byte", "the reserved byte after ndim must be 0") { s in
                let at = try s.find("model.skm", Array("model.norm.weight".utf8)) + "model.norm.weight".utf8.count + 3
                try s.patch("model.skm", at: at, [9]); try s.fixHeaderCRC("model.skm")
            },
            bytes("unknown tensor type", "unknown qtype 9") { s in
                let at = try s.find("model.skm", Array("model.norm.weight".utf8)) + "model.norm.weight".utf8.count
                try s.patch("model.skm", at: at, [9]); try s.fixHeaderCRC("model.skm")
            },
            Case(name: "SKM: a compressed tensor claiming 73 GB", tool: "skrun", status: input, message: "compressed bytes (more than 16384×)") { s in
                try s.rewriteSKM(try Scratch.tinySKM(), to: "z.skm", metadata: { _ in })
                let src = try SKMFile(path: s.path("z.skm"))
                let norm = src.info("model.norm.weight")!
                // Store model.norm.weight as a tiny zstd frame whose table entry claims [18.25e9] f32.
                let name = Array("model.norm.weight".utf8)
                let at = try s.find("z.skm", name) + name.count
                var entry: [UInt8] = [0, 1, 1, 0, 0, 0, 0, 0]                  // f32, zstd, ndim 1, group 0
                withUnsafeBytes(of: UInt64(18_250_000_000).littleEndian) { entry += $0 }   // dims
                withUnsafeBytes(of: UInt64(norm.offset).littleEndian) { entry += $0 }
                withUnsafeBytes(of: UInt64(16).littleEndian) { entry += $0 }                 // stored
                withUnsafeBytes(of: UInt64(73_000_000_000).littleEndian) { entry += $0 }     // raw
                try s.patch("z.skm", at: at, entry)
                try s.patch("z.skm", at: 52, [1])
                try s.fixHeaderCRC("z.skm")
                return generate(s.path("z.skm"))
            },
            skmMeta("num_hidden_layers 2^31 beside model.config", "metadata llama.num_hidden_layers is 2147483648 but model.config implies 2") {
                Scratch.set(&$0, "llama.num_hidden_layers", .int(1 << 31))
            },
            skmConfig("num_hidden_layers 2^31", "num_hidden_layers 2147483648 is larger than any model") { $0["num_hidden_layers"] = 1 << 31 },
            skmConfig("rope factor 1e300", "needs a factor between 1 and") { $0["rope_scaling"] = ["type": "linear", "factor": 1e300] },
            skmConfig("unknown rope type", "rope_scaling type \"ntk-by-parts\" is not supported") { $0["rope_scaling"] = ["type": "ntk-by-parts", "factor": 2.0] },
            skmConfig("hidden_act gelu", "hidden_act \"gelu\" is not supported") { $0["hidden_act"] = "gelu" },
            skmMeta("model.config missing", "metadata model.config (the model's config.json) is missing") { Scratch.set(&$0, "model.config", nil) },
            skmMeta("model.config not JSON", "model.config: invalid JSON") { Scratch.set(&$0, "model.config", .string("{\"a\":")) },
            skmMeta("another architecture", "model.architecture is \"mamba\"") { Scratch.set(&$0, "model.architecture", .string("mamba")) },
            skmMeta("an unexplained llama.* key", "metadata llama.sliding_window is not implied by model.config") { Scratch.set(&$0, "llama.sliding_window", .int(4)) },
            skmMeta("rms_norm_eps changed", "metadata llama.rms_norm_eps is -1.0 but model.config implies") { Scratch.set(&$0, "llama.rms_norm_eps", .double(-1)) },
            skmMeta("tokenizer merge of unknown tokens", "names \"zz\", which is not in the vocabulary") { Scratch.set(&$0, "tokenizer.merges", .stringArray(["zz qq"])) },
            skmMeta("tokenizer merge without a space", "is not two tokens separated by one space") { Scratch.set(&$0, "tokenizer.merges", .stringArray(["ab"])) },
            skmMeta("tokenizer token listed twice", "appears twice in the vocabulary") { m in
                var v = m.first { $0.0 == "tokenizer.vocab" }!.1.stringArray!
                v[5] = v[6]
                Scratch.set(&m, "tokenizer.vocab", .stringArray(v))
            },
            skmMeta("tokenizer bos_token unknown", "bos_token \"<nope>\" is not in the vocabulary") { Scratch.set(&$0, "tokenizer.bos_token", .string("<nope>")) },
            skmMeta("tokenizer regex that backtracks exponentially", "repeats a group that holds an alternation") {
                Scratch.set(&$0, "tokenizer.pre_tokenizer", .string(#"{"type":"Split","pattern":{"Regex":"(a|aa)+$"},"behavior":"Isolated","invert":false}"#))
            },
            skmMeta("tokenizer Metaspace without a replacement", "must be exactly one character") {
                Scratch.set(&$0, "tokenizer.pre_tokenizer", .string(#"{"type":"Metaspace","replacement":"","prepend_scheme":"always","split":true}"#))
            },
            skmMeta("tokenizer normalizer not JSON", "invalid JSON") { Scratch.set(&$0, "tokenizer.normalizer", .string("{\"type\":")) },
            skmMeta("tokenizer tree with a duplicate key", "appears twice in one object") {
                Scratch.set(&$0, "tokenizer.normalizer", .string(#"{"type":"Lowercase","type":"NFC"}"#))
            },
            skmMeta("tokenizer id used by two tokens", "is used twice") {
                Scratch.set(&$0, "tokenizer.added_tokens", .string(#"[{"id":5,"content":"<other>","special":true}]"#))
            },
            skmMeta("tokenizer larger than the embedding", "tokens but vocab_size is 128") { m in
                let v = m.first { $0.0 == "tokenizer.vocab" }!.1.stringArray!
                Scratch.set(&m, "tokenizer.vocab", .stringArray(v + (0..<72).map { "extra\($0)" }))
            },
            skmMeta("tokenizer missing", "no BPE tokenizer in the file's metadata") { Scratch.set(&$0, "tokenizer.vocab", nil) },
            Case(name: "SKM: a tensor the model does not use", tool: "skrun", status: input, message: "tensor extra.weight is not part of a llama model") { s in
                try s.rewriteSKM(try Scratch.tinySKM(), to: "x.skm", metadata: { _ in },
                                 extra: [(SKMTensorInfo(name: "extra.weight", type: .f32, group: 0, shape: [4]), [UInt8](repeating: 0, count: 16))])
                return generate(s.path("x.skm"))
            },
            skmMeta("mlp_bias without its tensors", "tensor model.layers.0.mlp.gate_proj.bias is missing") { m in
                let text = m.first { $0.0 == "model.config" }!.1.string!
                var d = try! JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
                d["mlp_bias"] = true
                Scratch.set(&m, "model.config", .string(String(decoding: try! JSONSerialization.data(withJSONObject: d), as: UTF8.self)))
                Scratch.set(&m, "llama.mlp_bias", .bool(true))
            },
        ]
    }()

    static let configCases: [Case] = [
        config("num_attention_heads 2^40", "num_attention_heads 1099511627776 is larger than any model") { $0["num_attention_heads"] = 1 << 40; $0["num_key_value_heads"] = 1 << 40 },
        config("heads × head_dim beyond any model", "head_dim 1048576 is larger than any model") { $0["head_dim"] = 1 << 20 },
        config("odd head_dim", "head_dim 7 must be even") { $0["head_dim"] = 7 },
        config("rope factor 1e300", "needs a factor between 1 and") { $0["rope_scaling"] = ["type": "linear", "factor": 1e300] },
        config("rope factor -1", "needs a factor between 1 and") { $0["rope_scaling"] = ["type": "linear", "factor": -1] },
        config("rope_theta 0", "rope_theta must be a finite number above 1") { $0["rope_theta"] = 0 },
        config("rope_theta 1e300", "rope_theta must be a finite number above 1") { $0["rope_theta"] = 1e300 },
        config("rms_norm_eps -1", "rms_norm_eps must be in (0, 1)") { $0["rms_norm_eps"] = -1 },
        config("rms_norm_eps 0", "rms_norm_eps must be in (0, 1)") { $0["rms_norm_eps"] = 0 },
        config("num_hidden_layers 10^9", "num_hidden_layers 1000000000 is larger than any model") { $0["num_hidden_layers"] = 1_000_000_000 },
        config("num_hidden_layers 0", "num_hidden_layers must be positive") { $0["num_hidden_layers"] = 0 },
        config("vocab_size 0", "vocab_size must be positive") { $0["vocab_size"] = 0 },
        config("vocab_size 2^40", "vocab_size 1099511627776 is larger than any model") { $0["vocab_size"] = 1 << 40 },
        config("hidden_act gelu", "hidden_act \"gelu\" is not supported") { $0["hidden_act"] = "gelu" },
        config("a quantized checkpoint", "this checkpoint is quantized") { $0["quantization_config"] = ["quant_method": "gptq"] },
        config("partial_rotary_factor 0.5", "partial_rotary_factor 0.5 is not supported") { $0["partial_rotary_factor"] = 0.5 },
        config("Qwen2 use_sliding_window", "use_sliding_window") { $0["model_type"] = "qwen2"; $0["use_sliding_window"] = true },
        config("unknown rope type", "rope_scaling type \"ntk-by-parts\" is not supported") { $0["rope_scaling"] = ["type": "ntk-by-parts", "factor": 2.0] },
        config("longrope without its factors", "longrope rope_scaling.short_factor must list") { $0["rope_scaling"] = ["type": "su", "factor": 2.0] },
        config("llama3 rope with high ≤ low", "needs high_freq_factor > low_freq_factor") {
            $0["rope_scaling"] = ["rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0, "original_max_position_embeddings": 16]
        },
        config("llama3 rope without its fields", "llama3 rope_scaling needs") { $0["rope_scaling"] = ["rope_type": "llama3", "factor": 8.0] },
        config("yarn mscale", "rope_scaling.mscale is not supported") { $0["rope_scaling"] = ["rope_type": "yarn", "factor": 4.0, "mscale": 0.7] },
        config("bos_token_id outside the vocabulary", "bos_token_id 500 lies outside the vocabulary") { $0["bos_token_id"] = 500 },
        config("eos_token_id negative", "eos_token_id -1 lies outside the vocabulary") { $0["eos_token_id"] = [2, -1] },
        config("another model type", "is not a LLaMA-family model") { $0["model_type"] = "gpt2" },
        config("KV heads that do not divide the heads", "is not a multiple of num_key_value_heads") { $0["num_key_value_heads"] = 3 },
        config("mlp_bias without bias tensors", "mlp.down_proj.bias is missing") { $0["mlp_bias"] = true },
        config("a string where a number belongs", "hidden_size must be") { $0["hidden_size"] = "32" },
        Case(name: "config.json: a key twice (readers disagree on which wins)", tool: "skconv", status: input, message: "appears twice in one object") { s in
            let m = try s.model()
            try s.replace("model/config.json", "{", "{\"hidden_size\": 64, ")
            return quantize(s, m)
        },
        Case(name: "config.json: not an object", tool: "skconv", status: input, message: "not a JSON object") { s in
            let m = try s.model(); s.write("model/config.json", "[1]"); return quantize(s, m)
        },
        Case(name: "config.json: nested 10,000 deep", tool: "skconv", status: input, message: "nested deeper than 512 levels") { s in
            let m = try s.model()
            s.write("model/config.json", "{\"a\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}")
            return quantize(s, m)
        },
        Case(name: "config.json: a FIFO", tool: "skconv", status: io, message: "is a FIFO, expected a regular file") { s in
            let m = try s.model(); try FileManager.default.removeItem(atPath: m + "/config.json"); s.mkfifo("model/config.json"); return quantize(s, m)
        },
        Case(name: "config.json: 70 MB", tool: "skconv", status: io, message: "more than the 67108864 bytes") { s in
            let m = try s.model()
            FileManager.default.createFile(atPath: m + "/config.json", contents: Data(repeating: 0x20, count: 70 << 20))
            return quantize(s, m)
        },
        Case(name: "config.json: not JSON", tool: "skconv", status: input, message: "invalid JSON") { s in
            let m = try s.model(); s.write("model/config.json", "{\"hidden_size\": 32,"); return quantize(s, m)
        },
        Case(name: "config.json: missing", tool: "skconv", status: io, message: "config.json: cannot open") { s in
            let m = try s.model(); try FileManager.default.removeItem(atPath: m + "/config.json"); return quantize(s, m)
        },
    ]

    static let tokenizerCases: [Case] = [
        tokenizer("a merge of unknown tokens", "names \"zz\", which is not in the vocabulary") { s in try s.replace("model/tokenizer.json", "\"merges\": [", "\"merges\": [\"zz qq\"") },
        tokenizer("Metaspace without a replacement", "must be exactly one character") { s in
            try s.json("model/tokenizer.json") { $0["pre_tokenizer"] = ["type": "Metaspace", "replacement": "", "prepend_scheme": "always", "split": true] }
        },
        tokenizer("a regex that backtracks exponentially", "repeats a group") { s in
            try s.json("model/tokenizer.json") { $0["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "(a+)+$"], "behavior": "Isolated", "invert": false] }
        },
        tokenizer("a token listed twice", "appears twice in one object") { s in try s.replace("model/tokenizer.json", "\"vocab\": {", "\"vocab\": {\"!\": 7, ") },
        tokenizer("cut short", "invalid JSON at byte") { s in let b = try s.bytes("model/tokenizer.json"); s.write("model/tokenizer.json", bytes: Array(b.prefix(b.count / 2))) },
        tokenizer("a FIFO", "is a FIFO, expected a regular file", status: io) { s in try FileManager.default.removeItem(atPath: s.path("model/tokenizer.json")); s.mkfifo("model/tokenizer.json") },
        tokenizer("bos_token not in the vocabulary", "bos_token \"<zzz>\" is not in the vocabulary") { s in try s.json("model/tokenizer_config.json") { $0["bos_token"] = "<zzz>" } },
        tokenizer("a WordPiece model", "tokenizer model WordPiece is not supported") { s in try s.json("model/tokenizer.json") { d in var m = d["model"] as! [String: Any]; m["type"] = "WordPiece"; d["model"] = m } },
        tokenizer("tokenizer_config.json with a key twice", "appears twice in one object") { s in try s.replace("model/tokenizer_config.json", "{", "{\"bos_token\": \"<s>\", ") },
        tokenizer("nested 600 deep", "nested deeper than 512") { s in
            s.write("model/tokenizer.json", "{\"x\":" + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "}")
        },
        tokenizer("an added token on another token's id", "is used twice") { s in
            try s.json("model/tokenizer.json") { $0["added_tokens"] = [["id": 5, "content": "<other>", "special": true]] }
        },
        tokenizer("more tokens than the embedding has rows", "ids past 127 would have no embedding row") { s in
            try s.json("model/tokenizer.json") { d in
                var m = d["model"] as! [String: Any]
                var v = m["vocab"] as! [String: Any]
                for i in 0..<10 { v["extra\(i)"] = 128 + i }
                m["vocab"] = v; d["model"] = m
            }
        },
        tokenizer("missing", "tokenizer.json: missing", status: io) { s in try FileManager.default.removeItem(atPath: s.path("model/tokenizer.json")) },
        tokenizer("a Split pattern with neither Regex nor String", "has no pattern") { s in
            try s.json("model/tokenizer.json") { $0["pre_tokenizer"] = ["type": "Split", "pattern": [:] as [String: Any], "behavior": "Isolated", "invert": false] }
        },
    ]

    static let safetensorsCases: [Case] = {
        let f32x4: [UInt8] = [UInt8](repeating: 0, count: 16)
        return [
            safetensors("header length 2^63", "exceeds the 100000000-byte limit", header: "{}", headerLength: 1 << 63),
            safetensors("header not JSON", "not valid safetensors JSON", header: "{\"a\":"),
            safetensors("a tensor named twice", "appears twice in one object",
                        header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: f32x4),
            safetensors("data cut short", "truncated", header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [0, 0, 0]),
            safetensors("bytes after the last tensor", "not covered by any data_offsets", header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: f32x4 + [1]),
            safetensors("a gap between tensors", "gap of 4 bytes", header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}"#, data: f32x4),
            safetensors("overlapping tensors", "overlaps the previous tensor", header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"v":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, data: f32x4),
            safetensors("an unknown dtype", "unknown dtype F12", header: #"{"w":{"dtype":"F12","shape":[4],"data_offsets":[0,16]}}"#, data: f32x4),
            safetensors("a negative dimension", "negative dimension", header: #"{"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}"#, data: f32x4),
            safetensors("a shape whose size overflows", "overflows", header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#, data: f32x4),
            safetensors("size and offsets disagree", "spans 16 bytes but F32 [2] needs 8", header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#, data: f32x4),
            safetensors("__metadata__ not strings", "__metadata__", header: #"{"__metadata__":{"a":1},"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: f32x4),
            Case(name: "safetensors: a weight is NaN", tool: "skconv", status: input, message: "non-finite value") { s in
                let m = try s.model(); try patchWeight(s, m, value: .nan); return quantize(s, m)
            },
            Case(name: "safetensors: a weight beyond int8's f16 scale", tool: "skconv", status: input, message: "too large for int8's f16 scale") { s in
                let m = try s.model(); try patchWeight(s, m, value: 1e30); return quantize(s, m)
            },
            Case(name: "safetensors: a weight beyond the f16 range (--type f16)", tool: "skconv", status: input, message: "beyond the f16 range") { s in
                let m = try s.model(); try patchWeight(s, m, value: 1e6); return quantize(s, m, type: "f16")
            },
            Case(name: "safetensors: a tensor the config does not describe", tool: "skconv", status: input, message: "is not part of a LLaMA model with this config") { s in
                let m = try s.model(); try addTensor(s, m, name: "model.layers.0.mlp.extra.weight"); return quantize(s, m)
            },
            Case(name: "safetensors: the model file is a FIFO", tool: "skconv", status: io, message: "is a FIFO, expected a regular file") { s in
                let m = try s.model(); try FileManager.default.removeItem(atPath: m + "/model.safetensors"); s.mkfifo("model/model.safetensors"); return quantize(s, m)
            },
            Case(name: "safetensors: a shard outside the model directory", tool: "skconv", status: input, message: "must be a plain file name") { s in
                let m = try s.model("llama-sharded")
                try s.replace("model/model.safetensors.index.json", "\"model-00003-of-00003.safetensors\"", "\"../model-00003-of-00003.safetensors\"")
                return quantize(s, m)
            },
            Case(name: "safetensors: a shard index with a key twice", tool: "skconv", status: input, message: "appears twice in one object") { s in
                let m = try s.model("llama-sharded")
                try s.replace("model/model.safetensors.index.json", "\"weight_map\": {", "\"weight_map\": {\"lm_head.weight\": \"x\", ")
                return quantize(s, m)
            },
            Case(name: "safetensors: integer weights", tool: "skconv", status: input, message: "expected F32, F16 or BF16") { s in
                let m = try s.model(); try retype(s, m, tensor: "model.norm.weight", dtype: "I32"); return quantize(s, m)
            },
        ]
    }()

    static let adapterCases: [Case] = [
        pickle("nested-tuples.bin", "containers nested more than 64 deep"),
        pickle("storage-2e62.bin", "overflows"),
        pickle("stride0.bin", "tensor view of 3200000 elements over a 1-element storage"),
        pickle("view-past-storage.bin", "tensor view reaches element 62 of a 32-element storage"),
        pickle("missing-storage.bin", "is missing from the archive"),
        pickle("short-storage.bin", "has 64 bytes"),
        pickle("not-a-dict.bin", "top-level object is not a dict"),
        pickle("memo-undefined.bin", "memo key 5 is undefined"),
        pickle("chained-lists.bin", "already inside another container"),
        pickle("long-size.bin", "integer of 9 bytes"),
        pickle("compressed-entry.bin", "is compressed"),
        pickle("truncated.bin", "no zip end-of-central-directory record"),
        pickle("legacy.bin", "legacy (pre-1.6, non-zip)"),
        Case(name: "pickle: a global that runs code", tool: "skconv", status: input, message: "refusing pickle global") { s in
            let m = try s.model(); let a = try s.adapter("bin")
            try FileManager.default.copyItem(atPath: Fixture.root + "/Fixtures/tiny/bad/evil.bin", toPath: a + "/evil.bin")
            try FileManager.default.removeItem(atPath: a + "/adapter_model.bin")
            try FileManager.default.moveItem(atPath: a + "/evil.bin", toPath: a + "/adapter_model.bin")
            return merge(s, base: m, adapter: a)
        },
        Case(name: "adapter: adapter_config.json with a key twice", tool: "skconv", status: input, message: "appears twice in one object") { s in
            let m = try s.model(); let a = try s.adapter(); try s.replace("adapter/adapter_config.json", "{", "{\"r\": 64, "); return merge(s, base: m, adapter: a)
        },
        Case(name: "adapter: r 0", tool: "skconv", status: input, message: "r must be a positive integer") { s in
            let m = try s.model(); let a = try s.adapter(); try s.json("adapter/adapter_config.json") { $0["r"] = 0 }; return merge(s, base: m, adapter: a)
        },
        Case(name: "adapter: adapter_config.json is a FIFO", tool: "skconv", status: io, message: "is a FIFO") { s in
            let m = try s.model(); let a = try s.adapter(); try FileManager.default.removeItem(atPath: a + "/adapter_config.json"); s.mkfifo("adapter/adapter_config.json")
            return merge(s, base: m, adapter: a)
        },
        Case(name: "adapter: layer_replication", tool: "skconv", status: input, message: "layer_replication") { s in
            merge(s, base: try s.model(), adapter: try s.adapter("layer-replication"))
        },
        Case(name: "trainable params: a FIFO", tool: "skconv", status: io, message: "is a FIFO") { s in
            let m = try s.model(); s.mkfifo("tp.bin"); return ["merge", "--base", m, "--trainable-params", s.path("tp.bin"), "--output", s.path("out")]
        },
    ]

    static let templateCases: [Case] = [
        template("integer overflow", "integer overflow", "{{ 9223372036854775807 + 1 }}"),
        template("integer overflow in *", "integer overflow", "{{ 4611686018427387904 * 4 }}"),
        template("50,000 nested parentheses", "of more than 2000 tokens", "{{ " + String(repeating: "(", count: 50_000) + "1" + String(repeating: ")", count: 50_000) + " }}"),
        template("500 nested parentheses", "nested more than 64 deep", "{{ " + String(repeating: "(", count: 500) + "1" + String(repeating: ")", count: 500) + " }}"),
        template("500 nested not", "nested more than 64 deep", "{{ " + String(repeating: "not ", count: 500) + "1 }}"),
        template("50,000 nested ifs", "template blocks nested more than 64 deep", String(repeating: "{% if true %}", count: 50_000) + "x" + String(repeating: "{% endif %}", count: 50_000)),
        template("an expression of 50,000 terms", "of more than 2000 tokens", "{{ " + Array(repeating: "1", count: 50_000).joined(separator: " + ") + " }}"),
        // (a loop's `set` lasts one iteration, as in Jinja: growth across iterations needs a namespace)
        template("a string doubled in a loop", "builds a string of more than", "{% set ns = namespace(s='xxxxxxxx') %}{% set l = [1,2,3,4,5,6] %}{% for a in l %}{% for b in l %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{% endfor %}{{ ns.s }}"),
        template("a list doubled in a loop", "a list of more than", "{% set ns = namespace(s=[1]) %}{% set l = [1,2,3,4,5,6] %}{% for a in l %}{% for b in l %}{% set ns.s = ns.s + ns.s %}{% endfor %}{% endfor %}{{ ns.s|length }}"),
        template("a range of 2^40 items", "a range of more than", "{{ range(1099511627776)|length }}"),
        template("a list nested 300,000 deep in a loop", "values nested more than 64 deep", "{% set ns = namespace(x=[]) %}{% for i in range(300000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}"),
        template("a namespace containing itself", "values nested more than 64 deep", "{% set ns = namespace(x=1) %}{% set ns.x = ns %}{{ ns }}"),
        template("namespaces chained 300,000 deep", "values nested more than 64 deep", "{% set ns = namespace(x=1) %}{% for i in range(300000) %}{% set ns.x = namespace(a=ns.x) %}{% endfor %}{{ ns }}"),
        template("tojson nested 100 deep", "nested more than 64 deep", "{% set ns = namespace(x=[]) %}{% for i in range(100) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x|tojson }}"),
        template("nested loops without end", "takes more than 10000000 steps", "{% set l = [1,2,3,4,5,6,7,8,9,10] %}" + String(repeating: "{% for a in l %}", count: 10) + "x" + String(repeating: "{% endfor %}", count: 10)),
        template("modulo of Int.min by -1", "integer overflow", "{{ (-9223372036854775807 - 1) % -1 }}"),
    ]

    static let outputCases: [Case] = [
        Case(name: "output: quantize into the input checkpoint (--force)", tool: "skconv", status: usage, message: "lies inside the input") { s in
            let m = try s.model(); return ["quantize", "--model", m, "--type", "int8", "--output", m + "/model.skm", "--force"]
        },
        Case(name: "output: merge onto the base through a symlinked parent (--force)", tool: "skconv", status: usage, message: "is the input") { s in
            let m = try s.model()
            try FileManager.default.createSymbolicLink(atPath: s.path("link"), withDestinationPath: s.dir)
            return ["merge", "--base", m, "--adapter", try s.adapter(), "--output", s.path("link/model"), "--force"]
        },
        Case(name: "output: --output is the --trainable-params file (--force)", tool: "skconv", status: usage, message: "is the input") { s in
            let m = try s.model()
            try FileManager.default.copyItem(atPath: Fixture.root + "/Fixtures/tiny/longlora-trainable_params.bin", toPath: s.path("tp.bin"))
            return ["merge", "--base", m, "--trainable-params", s.path("tp.bin"), "--output", s.path("tp.bin"), "--force"]
        },
        Case(name: "output: quantize over an existing directory (--force)", tool: "skconv", status: usage, message: "exists and is a directory") { s in
            let m = try s.model()
            try FileManager.default.createDirectory(atPath: s.path("out.skm"), withIntermediateDirectories: false)
            s.write("out.skm/precious", "keep")
            return quantize(s, m, extra: ["--force"])
        },
        Case(name: "output: merge over a directory skconv did not write (--force)", tool: "skconv", status: usage, message: "not a directory that skconv wrote") { s in
            let m = try s.model()
            try FileManager.default.createDirectory(atPath: s.path("out"), withIntermediateDirectories: false)
            s.write("out/precious", "keep")
            return merge(s, base: m, adapter: try s.adapter(), extra: ["--force"])
        },
        Case(name: "output: a hard link of an input file (--force)", tool: "skconv", status: usage, message: "is the same file as the input") { s in
            let m = try s.model()
            try FileManager.default.linkItem(atPath: m + "/model.safetensors", toPath: s.path("out.skm"))
            return quantize(s, m, extra: ["--force"])
        },
        Case(name: "output: a directory above the input (--force)", tool: "skconv", status: usage, message: "contains the input") { s in
            let m = try s.model()
            return ["merge", "--base", m, "--adapter", try s.adapter(), "--output", s.dir, "--force"]
        },
        Case(name: "output: inside an adapter directory", tool: "skconv", status: usage, message: "lies inside the input") { s in
            let m = try s.model(); let a = try s.adapter()
            return ["quantize", "--model", m, "--adapter", a, "--type", "int8", "--output", a + "/merged.skm"]
        },
        Case(name: "inspect: a FIFO", tool: "skconv", status: io, message: "is a FIFO, expected a regular file") { s in
            s.mkfifo("x.skm"); return ["inspect", "--verify", s.path("x.skm")]
        },
        Case(name: "inspect: a directory with a FIFO for config.json", tool: "skconv", status: io, message: "is a FIFO") { s in
            let m = try s.model(); try FileManager.default.removeItem(atPath: m + "/config.json"); s.mkfifo("model/config.json"); return ["inspect", m]
        },
        Case(name: "adapter: a target_modules regex that backtracks exponentially", tool: "skconv", status: input, message: "repeats a group that holds a quantifier") { s in
            let m = try s.model(); let a = try s.adapter("regex")
            try s.json("adapter/adapter_config.json") { $0["target_modules"] = "(.*q_proj)+" }
            return merge(s, base: m, adapter: a)
        },
        Case(name: "output: its directory does not exist", tool: "skconv", status: io, message: "does not exist") { s in
            ["quantize", "--model", try s.model(), "--type", "int8", "--output", s.path("no/such/dir/out.skm")]
        },
        Case(name: "output: \".\"", tool: "skconv", status: usage, message: "does not name a directory") { s in
            merge(s, base: try s.model(), adapter: try s.adapter(), extra: []).map { $0 == s.path("out") ? s.dir + "/." : $0 }
        },
        Case(name: "output: exists, no --force", tool: "skconv", status: usage, message: "already exists (use --force to replace it)") { s in
            let m = try s.model(); s.write("out.skm", "keep"); return quantize(s, m)
        },
    ]

    // MARK: helpers that make hostile checkpoints

    /// Sets the first element of model.layers.0.mlp.down_proj.weight to `value` (F32 fixture).
    static func patchWeight(_ s: Scratch, _ m: String, value: Float) throws {
        let f = m + "/model.safetensors"
        let st = try SKSafetensorsProbe.offset(of: "model.layers.0.mlp.down_proj.weight", in: f)
        var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: f)))
        withUnsafeBytes(of: value.bitPattern.littleEndian) { for k in 0..<4 { b[st + k] = $0[k] } }
        try Data(b).write(to: URL(fileURLWithPath: f))
    }

    /// Rewrites model.safetensors with one more F32 tensor of 4 zeros.
    static func addTensor(_ s: Scratch, _ m: String, name: String) throws {
        try SKSafetensorsProbe.rewrite(m + "/model.safetensors") { header, data in
            header[name] = ["dtype": "F32", "shape": [4], "data_offsets": [data.count, data.count + 16]]
            data += [UInt8](repeating: 0, count: 16)
        }
    }

    /// Relabels a tensor's dtype (same byte size).
    static func retype(_ s: Scratch, _ m: String, tensor: String, dtype: String) throws {
        try SKSafetensorsProbe.rewrite(m + "/model.safetensors") { header, _ in
            var t = header[tensor] as! [String: Any]
            t["dtype"] = dtype
            header[tensor] = t
        }
    }

    // MARK: the run

    func testCatalogue() throws {
        XCTAssertGreaterThanOrEqual(Self.cases.count, 100)
        let env = ["SINKKIT_CACHE": Fixture.scratch()]   // the verified-file record lives outside the scratch dirs
        var counts: [Int32: Int] = [:]
        for c in Self.cases {
            let s = Scratch()
            let args: [String]
            do { args = try c.setup(s) } catch { XCTFail("\(c.name): setup failed: \(error)"); continue }
            let before = s.snapshot()
            let r = try Executable.run(c.tool, args, environment: env)
            XCTAssertEqual(r.status, c.status, "\(c.name): exit status (stderr: \(r.stderr.prefix(300)))")
            XCTAssertTrue(r.stderr.contains(c.message), "\(c.name): stderr \"\(r.stderr.prefix(400))\" lacks \"\(c.message)\"")
            XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") || $0.hasPrefix("Error:") }.count, 1,
                           "\(c.name): one error line expected: \(r.stderr.prefix(300))")
            let after = s.snapshot()
            XCTAssertEqual(after, before, "\(c.name): the scratch directory changed (an output, a temporary, or a modified input): " +
                           "\(Set(after.keys).symmetricDifference(before.keys).sorted()) \(before.keys.filter { before[$0] != after[$0] }.sorted())")
            counts[r.status, default: 0] += 1
            try? FileManager.default.removeItem(atPath: s.dir)
        }
        print("hostile-input catalogue: \(Self.cases.count) cases, exit statuses \(counts.sorted { $0.key < $1.key })")
    }
}
