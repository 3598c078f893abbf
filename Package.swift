// swift-tools-version:6.1
import PackageDescription

// SinkKit: LoRA/SinkLoRA checkpoints -> merged model -> compact quantized file -> CPU runtime.
// Floors (see README "Architecture"): SKCore/SKModel at the bottom, readers on top of them,
// merge on top of the readers, thin executables last.
let package = Package(
    name: "SinkKit",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "skconv", targets: ["skconv"]),
        .executable(name: "skrun", targets: ["skrun"]),
        .library(name: "SKCore", targets: ["SKCore"]),
        .library(name: "SKSafetensors", targets: ["SKSafetensors"]),
        .library(name: "SKGGUF", targets: ["SKGGUF"]),
        .library(name: "SKModel", targets: ["SKModel"]),
        .library(name: "SKMerge", targets: ["SKMerge"]),
        .library(name: "SKQuant", targets: ["SKQuant"]),
        .library(name: "SKFormat", targets: ["SKFormat"]),
        .library(name: "SKTokenizer", targets: ["SKTokenizer"]),
        .library(name: "SKRuntime", targets: ["SKRuntime"]),
        .library(name: "SKEngine", targets: ["SKEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // No default traits: "FullFoundation" would link full Foundation (and ICU, ~30 MB) into skrun.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // System libraries, found through pkg-config (Debian: libzstd-dev, libopenblas-dev).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]),

        // Floor 1: dtypes, half floats, mapped files, f32 tensors, hashing, errors.
        .target(name: "SKCore", dependencies: ["SKKernels"]),
        // Floor 1: hot kernels in C (scalar reference, AVX2, NEON), chosen at run time.
        .target(name: "SKKernels"),
        // Floor 1: the LLaMA-family config with Hugging Face field names.
        .target(name: "SKModel", dependencies: ["SKCore"]),
        // Floor 2: safetensors reader/writer, shards, restricted torch-pickle reader.
        .target(name: "SKSafetensors", dependencies: ["SKCore"]),
        // Floor 2: quantizers (scalar reference twins, error statistics).
        .target(name: "SKQuant", dependencies: ["SKCore", "SKKernels", "SKSafetensors", "SKGGUF"]),
        // Floor 2: the SKM file format: writer, mapped reader, checksums, zstd sections.
        .target(name: "SKFormat", dependencies: ["SKCore", "CZstd"]),
        // Floor 3: PEFT / LongLoRA merge.
        .target(name: "SKGGUF", dependencies: ["SKCore", "SKKernels", "SKTokenizer"]),
        .target(name: "SKMerge", dependencies: ["SKCore", "SKModel", "SKSafetensors", "SKGGUF", "SKTokenizer", "COpenBLAS"]),
        // Floor 3: HF checkpoint (+ adapters) -> SKM: recipe, metadata, streaming quantization.
        .target(name: "SKConvert", dependencies: ["SKCore", "SKModel", "SKSafetensors", "SKGGUF", "SKMerge", "SKQuant", "SKFormat", "SKTokenizer"]),
        // Floor 3: the CPU runtime (reads SKM only: never the converter's libraries).
        .target(name: "SKRuntime", dependencies: ["SKCore", "SKModel", "SKFormat", "SKKernels", "SKTokenizer", "COpenBLAS"]),
        // Floor 4: the engine: model loaded once, sessions, the generation loop, streaming (Swift 6 mode).
        .target(name: "SKEngine", dependencies: ["SKCore", "SKRuntime", "SKTokenizer"],
                swiftSettings: [.swiftLanguageMode(.v6)]),
        // Floor 4: the OpenAI-compatible HTTP server on the engine's scheduler (Hummingbird 2).
        .target(name: "SKServer", dependencies: ["SKCore", "SKEngine", "SKRuntime",
                                                 .product(name: "Hummingbird", package: "hummingbird"),
                                                 .product(name: "Logging", package: "swift-log")],
                swiftSettings: [.swiftLanguageMode(.v6)]),
        // Floor 2: tokenizers from SKM metadata (byte-level and SentencePiece-style BPE), chat templates.
        .target(name: "SKTokenizer", dependencies: ["SKCore"]),
        // Floor 4: what both command-line tools share (the exit table).
        .target(name: "SKCLI", dependencies: ["SKCore", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // Floor 4: the command line.
        .executableTarget(name: "skrun", dependencies: [
            "SKCore", "SKCLI", "SKFormat", "SKGGUF", "SKRuntime", "SKTokenizer", "SKEngine", "SKServer",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "skconv", dependencies: [
            "SKCore", "SKCLI", "SKModel", "SKSafetensors", "SKMerge", "SKQuant", "SKFormat", "SKConvert", "SKRuntime",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Fuzz targets of every reader of untrusted bytes (libFuzzer with -DFUZZING; a replay tool otherwise).
        .executableTarget(name: "skfuzz", dependencies: ["SKCore", "SKSafetensors", "SKFormat", "SKGGUF", "SKModel", "SKTokenizer", "SKConvert", "SKMerge"]),

        // Test-only helpers: fixture paths, running the built executables.
        .target(name: "SKTestSupport", dependencies: ["SKCore", "SKSafetensors"], path: "Tests/SKTestSupport"),
        .testTarget(name: "SKCoreTests", dependencies: ["SKCore", "SKModel", "SKTestSupport"]),
        .testTarget(name: "SKSafetensorsTests", dependencies: ["SKCore", "SKSafetensors", "SKTestSupport"]),
        .testTarget(name: "SKGGUFTests", dependencies: ["SKCore", "SKGGUF", "SKMerge", "SKQuant", "SKSafetensors", "SKConvert", "SKFormat", "SKTokenizer", "SKTestSupport"]),
        .testTarget(name: "SKMergeTests", dependencies: ["SKCore", "SKModel", "SKSafetensors", "SKMerge", "SKTestSupport"]),
        .testTarget(name: "SKQuantTests", dependencies: ["SKCore", "SKQuant", "SKSafetensors", "SKTestSupport"]),
        .testTarget(name: "SKFormatTests", dependencies: ["SKCore", "SKQuant", "SKFormat", "SKConvert", "SKMerge", "SKSafetensors", "SKTestSupport"]),
        .testTarget(name: "SKTokenizerTests", dependencies: ["SKCore", "SKFormat", "SKConvert", "SKRuntime", "SKTokenizer", "SKTestSupport"]),
        .testTarget(name: "SKRuntimeTests", dependencies: ["SKCore", "SKModel", "SKConvert", "SKRuntime", "SKSafetensors", "SKFormat", "SKTestSupport"]),
        .testTarget(name: "SKRunTests", dependencies: ["skrun", "skconv", "SKRuntime", "SKTestSupport"]),
        .testTarget(name: "SKQualityTests", dependencies: ["skconv", "skrun", "SKCore", "SKQuant", "SKRuntime", "SKEngine", "SKServer", "SKSafetensors", "SKConvert", "SKFormat", "SKTestSupport"]),
        .testTarget(name: "SKHostileInputTests", dependencies: ["skconv", "skrun", "SKCore", "SKFormat", "SKTestSupport"]),
        .testTarget(name: "SKConvTests", dependencies: ["skconv", "SKCore", "SKSafetensors", "SKFormat", "SKTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
