// skfuzz: the fuzz targets of every reader that takes a stranger's bytes. Built with
// `-sanitize=fuzzer` and `-DFUZZING` (scripts/fuzz.sh) it is a libFuzzer binary:
//     skfuzz TARGET [libFuzzer flags] [CORPUS...]
// Built normally it replays inputs (regression files, seed corpora) through a target:
//     skfuzz TARGET FILE...
// A target must never crash, hang or exhaust memory on any input: every malformed input is a
// thrown SinkKitError (or JinjaError), which the harness swallows.
import Foundation
import SKConvert
import SKCore
import SKFormat
import SKGGUF
import SKMerge
import SKModel
import SKSafetensors
import SKTokenizer

/// Each target: bytes in, everything a real caller would do with them.
let targets: [String: (UnsafeRawBufferPointer) throws -> Void] = [
    "safetensors": { b in
        let f = try SafetensorsFile(file: MappedFile(bytes: b, path: "fuzz.safetensors"))
        for t in f.tensors.prefix(16) where t.elementCount <= 1 << 20 && t.dtype.isFloatWeight { _ = try f.loadF32(t.name) }
    },
    "pickle": { b in
        let c = try TorchCheckpoint(file: MappedFile(bytes: b, path: "fuzz.bin"))
        for n in c.tensorNames.prefix(16) where (c.info(n)?.elementCount ?? 0) <= 1 << 20 { _ = try c.loadF32(n) }
    },
    "zip": { b in
        let z = try ZipArchive(file: MappedFile(bytes: b, path: "fuzz.zip"))
        for e in z.entries.values { _ = try z.data(e).reduce(0, &+) }
    },
    "skm": { b in try skm(MappedFile(bytes: b, path: "fuzz.skm")) },
    // The same with the header checksum made right first, so that mutations of the metadata and
    // the tensor table reach their parsers instead of stopping at the CRC.
    "skm-header": { b in
        var bytes = Array(b)
        if bytes.count >= 64 {
            let hs = bytes[16..<24].enumerated().reduce(0) { $0 | UInt64($1.1) << (8 * UInt64($1.0)) }
            if hs <= UInt64(bytes.count - 64) {
                var crc = CRC32()
                bytes.withUnsafeBytes { p in
                    crc.update(UnsafeRawBufferPointer(rebasing: p[0..<56]))
                    crc.update(UnsafeRawBufferPointer(rebasing: p[64..<(64 + Int(hs))]))
                }
                for k in 0..<4 { bytes[56 + k] = UInt8(truncatingIfNeeded: crc.value >> (8 * UInt32(k))) }
            }
        }
        try bytes.withUnsafeBytes { try skm(MappedFile(bytes: $0, path: "fuzz.skm")) }
    },
    "tokenizer": { b in
        let entries = try TokenizerMetadata.entries(tokenizerJSON: Data(b), path: "fuzz-tokenizer.json", tokenizerConfig: [:], chatTemplateFile: nil)
        let tok = try Tokenizer(spec: try TokenizerSpec(metadata: Dictionary(entries, uniquingKeysWith: { a, _ in a }), path: "fuzz"))
        _ = tok.decode(tok.encode(sampleText, addSpecialTokens: true))
    },
    "template": { b in
        let t = try JinjaTemplate(String(decoding: b, as: UTF8.self))
        _ = try t.render(["messages": .list(sampleMessages), "add_generation_prompt": .bool(true),
                          "bos_token": .string("<s>"), "eos_token": .string("</s>")])
    },
    // A GGUF file as skconv quantize --model X.gguf and skrun tokenize read it: header, metadata,
    // tensor table, the model view (config, names), the tokenizer, small tensors decoded.
    "gguf": { b in
        let g = try GGUFFile(file: MappedFile(bytes: b, path: "fuzz.gguf"))
        for t in g.tensors.prefix(16) where t.elementCount <= 1 << 20 { _ = try g.dequantize(t) }
        if let base = try? GGUFBase(g) {
            for n in base.tensorNames.prefix(16) where (base.info(n)?.elementCount ?? 0) <= 1 << 20 { _ = try base.loadF32(n) }
        }
        let tok = try Tokenizer(spec: try GGUFTokenizer.spec(g))
        _ = tok.decode(tok.encode(sampleText, addSpecialTokens: true))
    },
    "config": { b in
        let c = try LlamaConfig(data: Data(b), path: "fuzz-config.json")
        var m: [String: SKMValue] = [:]
        for (k, v) in try c.metadataEntries() { m[k] = v }
        _ = try LlamaConfig(metadata: m, path: "fuzz.skm")
        _ = LlamaTensors.expectedShapes(c).count
    },
    "adapter-config": { b in
        let a = try AdapterConfig(data: Data(b), path: "fuzz-adapter_config.json")
        _ = try a.targets(module: "model.layers.0.self_attn.q_proj", isOutputHead: false)
        _ = a.rankAndAlpha(module: "model.layers.0.self_attn.q_proj")
    },
]

/// What skrun does with a file: the header and table, the config, the tokenizer, the tensors, the checksums.
func skm(_ file: MappedFile) throws {
    let f = try SKMFile(file: file)
    _ = try? LlamaConfig(metadata: f.metadata, path: "fuzz.skm")
    if let tok = try? Tokenizer(spec: try TokenizerSpec(metadata: f.metadata, path: "fuzz.skm")) {
        _ = tok.decode(tok.encode(sampleText, addSpecialTokens: true))
    }
    for t in f.tensors.prefix(16) where t.rawBytes <= 1 << 20 { _ = try? f.withRawBytes(t) { $0.count } }
    try f.verify()
}

let sampleText = "Hello, world! Ça va? 123 4567 — 日本語 \u{1F600} <s>[INST] x [/INST]\n\t  end"
let sampleMessages: [JValue] = [
    .dict(["role": .string("system"), "content": .string("You are helpful.")]),
    .dict(["role": .string("user"), "content": .string("Hi there")]),
    .dict(["role": .string("assistant"), "content": .string("Hello!")]),
    .dict(["role": .string("user"), "content": .string(sampleText)]),
]

nonisolated(unsafe) var current: ((UnsafeRawBufferPointer) throws -> Void)!

func runOne(_ data: UnsafeRawBufferPointer) {
    do { try current(data) } catch is SinkKitError {} catch is JinjaError {} catch {
        // Anything else escaping a reader is a bug in how it reports errors.
        fatalError("unexpected error type \(type(of: error)): \(error)")
    }
}

let args = CommandLine.arguments
guard args.count >= 2, let target = targets[args[1]] else {
    FileHandle.standardError.write(Data("usage: skfuzz TARGET [FILE... | libFuzzer flags]\ntargets: \(targets.keys.sorted().joined(separator: ", "))\n".utf8))
    exit(2)
}
current = target

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    runOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ cb: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

// libFuzzer sees the arguments without the target name.
var fuzzArgs = [args[0]] + args.dropFirst(2)
var cArgs = fuzzArgs.map { strdup($0) } + [nil]
var argc = CInt(fuzzArgs.count)
exit(cArgs.withUnsafeMutableBufferPointer { buf in
    var argv = buf.baseAddress!
    return LLVMFuzzerRunDriver(&argc, &argv) { fuzzOne($0, $1) }
})
#else
var failures = 0
for path in args.dropFirst(2) {
    var isDir: ObjCBool = false
    let files = FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
        ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 } : [path]
    for f in files {
        guard let d = FileManager.default.contents(atPath: f) else { failures += 1; print("cannot read \(f)"); continue }
        d.withUnsafeBytes { runOne($0) }
    }
    print("\(args[1]): \(files.count) inputs from \(path), no crash")
}
exit(failures == 0 ? 0 : 1)
#endif
