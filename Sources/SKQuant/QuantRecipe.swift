import Foundation
import SKCore

/// Which type each tensor gets (`skconv quantize --type/--group/--tensor-type`):
/// 1-D tensors (norms, biases) stay f32; the token embedding and the output head get the
/// embedding type (int8 under any integer type: measured on SmolLM2, whose tied embedding is
/// also its output head, see README); `--tensor-type REGEX=TYPE[:GROUP]` overrides, first
/// match wins (a regex search in the tensor name); everything else gets the default type.
public struct QuantRecipe {
    public struct Override {
        public let pattern: String
        let regex: NSRegularExpression
        public let type: QuantType
        public let group: Int
    }

    public var defaultType: QuantType
    public var defaultGroup: Int
    public var embeddingType: QuantType
    public var embeddingGroup: Int
    public var overrides: [Override]

    public init(type: QuantType, group: Int?, overrides: [String]) throws {
        defaultType = type
        defaultGroup = try Self.checkGroup(group ?? type.defaultGroup, for: type, what: "--group")
        switch type {
        case .f32: embeddingType = .f32
        case .f16: embeddingType = .f16
        case .int8, .int4, .int4Sym, .int5Sym: embeddingType = .int8
        }
        embeddingGroup = embeddingType.defaultGroup
        self.overrides = try overrides.map(Self.parseOverride)
    }

    static func checkGroup(_ g: Int, for t: QuantType, what: String) throws -> Int {
        guard t.allowedGroups.contains(g) else {
            throw SinkKitError(.invalidArgument, "\(what) \(g) is not valid for \(t.userName) (allowed: \(t.allowedGroups.map(String.init).joined(separator: ", ")))")
        }
        return g
    }

    /// Parses `REGEX=TYPE[:GROUP]`, e.g. `embed_tokens=int8`, `down_proj=int4:64`.
    public static func parseOverride(_ s: String) throws -> Override {
        guard let eq = s.lastIndex(of: "=") else {
            throw SinkKitError(.invalidArgument, "--tensor-type \(s): expected REGEX=TYPE[:GROUP]")
        }
        let pattern = String(s[..<eq]), spec = String(s[s.index(after: eq)...])
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false)
        guard !pattern.isEmpty, parts.count <= 2 else {
            throw SinkKitError(.invalidArgument, "--tensor-type \(s): expected REGEX=TYPE[:GROUP]")
        }
        let t = try QuantType.parse(String(parts[0]), flag: "--tensor-type \(s)")
        var g = t.defaultGroup
        if parts.count == 2 {
            guard let n = Int(parts[1]) else { throw SinkKitError(.invalidArgument, "--tensor-type \(s): group \(parts[1]) is not a number") }
            g = n
        }
        let re: NSRegularExpression
        do { re = try NSRegularExpression(pattern: pattern) } catch {
            throw SinkKitError(.invalidArgument, "--tensor-type \(s): invalid regular expression \(pattern)")
        }
        return Override(pattern: pattern, regex: re, type: t, group: try checkGroup(g, for: t, what: "--tensor-type \(s): group"))
    }

    /// `--type mixed`: more bits where the model is sensitive, at about llama.cpp's Q4_K_M file
    /// size on a model whose rows are not a multiple of 256 (there Q4_K_M falls back to Q5_0 and
    /// Q8_0). The rule, from per-class sensitivity measured on the off-grid SmolLM2 twin (held-out
    /// text, ctx 512, each class alone at int5-sym with the rest at int8; perplexity increase):
    /// v_proj +0.305 for 2% of the weights, q_proj −0.02, k_proj +0.06, o_proj +0.02, gate +0.09,
    /// up +0.13, down +0.07, output head +0.16, embedding at int4-sym +0.08. So: int5-sym for the
    /// layer matrices, int8 for v_proj (as Q4_K_M keeps attn_v at 6 bits) and the output head, the
    /// token embedding at int5-sym with group 64 when it is only looked up (untied), int8 when it
    /// is also the head; norms f32. `--group` sets the layer matrices' group; `--tensor-type`
    /// overrides come first. Measured: docs/measurements/quality.md.
    public static func mixed(group: Int?, overrides: [String], tiedEmbeddings: Bool) throws -> QuantRecipe {
        var r = try QuantRecipe(type: .int5Sym, group: group, overrides: overrides + ["v_proj=int8"])
        if !tiedEmbeddings {
            r.embeddingType = .int5Sym
            r.embeddingGroup = 64
            r.embeddingGroupFallback = 32
            r.overrides.append(try parseOverride("lm_head=int8"))
        }
        r.name = "mixed"
        return r
    }

    /// The recipe's name when it is a named one (`mixed`).
    public var name: String?
    /// A group the embedding's default falls back to when `embeddingGroup` does not divide its rows.
    var embeddingGroupFallback: Int?

    public static func isEmbeddingOrHead(_ name: String) -> Bool {
        name == "model.embed_tokens.weight" || name == "lm_head.weight"
    }

    /// Type and group for one tensor; throws when the group does not divide its rows.
    public func choose(name: String, shape: [Int]) throws -> (QuantType, Int) {
        if shape.count <= 1 { return (.f32, 0) }
        var choice = Self.isEmbeddingOrHead(name) ? (embeddingType, embeddingGroup) : (defaultType, defaultGroup)
        if Self.isEmbeddingOrHead(name), let g = embeddingGroupFallback, let cols = shape.last, cols % embeddingGroup != 0 { choice.1 = g }
        let r = NSRange(name.startIndex..<name.endIndex, in: name)
        if let o = overrides.first(where: { $0.regex.firstMatch(in: name, range: r) != nil }) { choice = (o.type, o.group) }
        let cols = shape.last!
        if choice.0.isQuantized && cols % choice.1 != 0 {
            throw SinkKitError(.invalidArgument, "group size \(choice.1) does not divide the row length \(cols) of \(name) (\(choice.0.userName)); use --group or --tensor-type with a divisor of \(cols)")
        }
        return choice
    }

    /// The recipe as recorded in the file's provenance.
    public var description: [String: Any] {
        ["recipe": name ?? defaultType.userName, "type": defaultType.userName, "group": defaultGroup, "embedding_type": embeddingType.userName,
         "embedding_group": embeddingGroup, "one_dimensional": "f32",
         "overrides": overrides.map { "\($0.pattern)=\($0.type.userName)\($0.type.isQuantized ? ":\($0.group)" : "")" }]
    }
}
