import SKCore
import SKMerge

/// What `skconv quantize` was asked to do.
public struct QuantizeJob {
    public var modelDirectory: String
    public var adapterDirectories: [String] = []
    public var trainableParamsPath: String?
    public var context: Int?
    public var type: QuantType
    public var group: Int?
    public var tensorTypes: [String] = []
    /// zstd level for `--compress`; nil stores tensors uncompressed.
    public var compressionLevel: Int32?
    public var output: String
    public var force = false
    public var threads = BlockQuantizerThreads.all
    /// An importance matrix (`skconv calibrate`): int4 / int4-sym blocks minimise the
    /// activation-weighted error.
    public var imatrix: String?
    /// `--type mixed`: QuantRecipe.mixed (then `type` is ignored).
    public var mixed = false
    /// Elements per block when a tensor is merged and quantized by blocks of rows (about 4 MB
    /// of f32; tests use small blocks to cross block boundaries).
    var rowBlockElements = 1 << 20

    public init(modelDirectory: String, type: QuantType, output: String) {
        self.modelDirectory = modelDirectory
        self.type = type
        self.output = output
    }

    var mergeJob: MergeJob {
        MergeJob(baseDirectory: modelDirectory, adapterDirectories: adapterDirectories, trainableParamsPath: trainableParamsPath,
                 context: context, dtype: nil, outputDirectory: output, force: force)
    }
}

public enum BlockQuantizerThreads {
    public static var all: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}

/// Totals for one storage type, for the summary table.
public struct TypeSummary {
    public var type: QuantType
    public var group: Int
    public var tensors = 0
    public var parameters = 0
    public var rawBytes = 0
    public var storedBytes = 0
    public var squaredError = 0.0
    public var squaredValue = 0.0

    public var bitsPerWeight: Double { parameters == 0 ? 0 : 8 * Double(storedBytes) / Double(parameters) }
    public var rmse: Double { parameters == 0 ? 0 : (squaredError / Double(parameters)).squareRoot() }
    /// RMSE relative to the RMS of the weights.
    public var relativeRMSE: Double { squaredValue == 0 ? 0 : (squaredError / squaredValue).squareRoot() }
}

public struct QuantizeReport {
    public var summaries: [TypeSummary] = []
    public var fileBytes = 0
    public var parameters = 0
    public var loraModulesMerged = 0
    /// Tensors quantized with importance weights.
    public var imatrixTensors = 0
    /// Tensors whose GGUF blocks were carried over bit for bit (same values in an SKM type).
    public var carriedTensors: [String] = []
    /// ⟨Q(merged) − Q(base), merged − base⟩ and ‖merged − base‖² over the tensors an adapter changed.
    /// ⟨Δq, Δ⟩ and ⟨Δ, Δ⟩ summed over the layer matrices (what LoRA changes) and over the
    /// embedding and head (what LongLoRA trains fully), apart: one large trained embedding would
    /// otherwise hide layer deltas that quantization erased.
    public var deltaKeptDot = [0.0, 0.0]
    public var deltaNorm = [0.0, 0.0]
    /// The share of the fine-tune's change the quantized layer matrices keep (nil when unchanged).
    public var deltaKeptLayers: Double? { deltaNorm[0] > 0 ? deltaKeptDot[0] / deltaNorm[0] : nil }
    /// The same for the embedding and output head.
    public var deltaKeptEmbeddings: Double? { deltaNorm[1] > 0 ? deltaKeptDot[1] / deltaNorm[1] : nil }
    /// The smaller of the two (nil without adapters).
    public var deltaKept: Double? { [deltaKeptLayers, deltaKeptEmbeddings].compactMap { $0 }.min() }
    public var warnings: [String] = []
    public var peakResidentBytes: Int?
    public var seconds = 0.0
    public var bitsPerWeight: Double { parameters == 0 ? 0 : 8 * Double(fileBytes) / Double(parameters) }
}

/// Progress: (tensors done, total, tensor name).
public typealias QuantizeProgress = (Int, Int, String) -> Void

import Foundation
