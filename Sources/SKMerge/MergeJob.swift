import SKCore

/// What `skconv merge` was asked to do.
public struct MergeJob {
    public var baseDirectory: String
    public var adapterDirectories: [String]
    public var trainableParamsPath: String?
    public var context: Int?
    /// nil = auto: every tensor keeps the base's storage type.
    public var dtype: DType?
    public var outputDirectory: String
    public var force: Bool

    public init(baseDirectory: String, adapterDirectories: [String], trainableParamsPath: String? = nil,
                context: Int? = nil, dtype: DType? = nil, outputDirectory: String, force: Bool = false) {
        self.baseDirectory = baseDirectory
        self.adapterDirectories = adapterDirectories
        self.trainableParamsPath = trainableParamsPath
        self.context = context
        self.dtype = dtype
        self.outputDirectory = outputDirectory
        self.force = force
    }

    /// Every file or directory the job reads (what an output may never touch).
    public var inputPaths: [String] { [baseDirectory] + adapterDirectories + (trainableParamsPath.map { [$0] } ?? []) }
}

/// What a merge did, for the CLI to print.
public struct MergeReport {
    public var tensorsWritten = 0
    public var loraModulesMerged = 0
    public var tensorsReplaced = 0
    public var vocabSize = 0
    public var previousVocabSize = 0
    public var ropeScalingWritten: Double?
    public var warnings: [String] = []
    public var peakResidentBytes: Int?
    public var largestTensorBytes = 0
    public var outputBytes = 0
}

/// Progress callback: (tensors done, tensors total, name of the tensor just written).
public typealias MergeProgress = (Int, Int, String) -> Void
