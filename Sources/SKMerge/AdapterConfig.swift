import Foundation
import SKCore

/// `adapter_config.json` of a PEFT LoRA adapter (peft `tuners/lora/config.py`).
public struct AdapterConfig {
    public enum Targets: Equatable {
        case list([String])    // suffix match: name == t or name ends with "." + t
        case regex(String)     // re.fullmatch on the whole module name
        case allLinear         // "all-linear": every linear layer but the output head
    }

    public var r: Int
    public var loraAlpha: Double
    public var targetModules: Targets
    public var fanInFanOut: Bool
    public var useRslora: Bool
    public var useDora: Bool
    public var loraBias: Bool
    public var bias: String
    public var modulesToSave: [String]
    public var rankPattern: [(String, Int)]
    public var alphaPattern: [(String, Double)]
    public var layersToTransform: [Int]?
    public var baseModelName: String?
    public let raw: [String: Any]

    public init(path: String) throws {
        try self.init(data: try InputFile.read(path, limit: Limits.maxJSONFileBytes), path: path)
    }

    /// The config from the file's bytes (`path` names it in messages).
    public init(data: Data, path: String) throws {
        try self.init(raw: try StrictJSON.object(data, path: path, kind: .adapter), data: data, path: path)
    }

    private struct Fields: Decodable {
        var peft_type: String?
        var r: Int?
        var lora_alpha: Double?
        var fan_in_fan_out, use_rslora, use_dora, lora_bias: Bool?
        var bias: String?
        var modules_to_save: [String]?
        var rank_pattern: [String: Int]?
        var alpha_pattern: [String: Double]?
        var layers_to_transform: LayerSel?
        var layers_pattern: StringOrList?
        var base_model_name_or_path: String?

        enum LayerSel: Decodable {
            case one(Int), many([Int])
            init(from d: Decoder) throws {
                let c = try d.singleValueContainer()
                if let i = try? c.decode(Int.self) { self = .one(i) } else { self = .many(try c.decode([Int].self)) }
            }
        }
        enum StringOrList: Decodable {
            case one(String), many([String])
            init(from d: Decoder) throws {
                let c = try d.singleValueContainer()
                if let s = try? c.decode(String.self) { self = .one(s) } else { self = .many(try c.decode([String].self)) }
            }
        }
    }

    init(raw d: [String: Any], data: Data, path: String) throws {
        raw = d
        let f: Fields
        do { f = try JSONDecoder().decode(Fields.self, from: data) } catch {
            throw SinkKitError(.adapter, "\(path): invalid adapter config (\(error))")
        }
        if let t = f.peft_type, t != "LORA" {
            throw SinkKitError(.refused, "\(path): peft_type \(t) cannot be merged (only LORA adapters are supported)")
        }
        if let lr = d["layer_replication"], !(lr is JSONNull) {
            throw SinkKitError(.refused, "\(path): layer_replication is set; merging it would duplicate layers and is refused (PEFT cannot merge it either)")
        }
        if let lp = f.layers_pattern, case .one(let s) = lp, s != "layers" {
            throw SinkKitError(.refused, "\(path): layers_pattern \(s) is not supported (LLaMA layers are model.layers.N)")
        }
        guard let r = f.r, r > 0 else { throw SinkKitError(.adapter, "\(path): r must be a positive integer") }
        self.r = r
        loraAlpha = f.lora_alpha ?? 8
        fanInFanOut = f.fan_in_fan_out ?? false
        useRslora = f.use_rslora ?? false
        useDora = f.use_dora ?? false
        loraBias = f.lora_bias ?? false
        bias = f.bias ?? "none"
        modulesToSave = f.modules_to_save ?? []
        // JSON objects are unordered for JSONDecoder; keep the file's key order for
        // "first match wins" by reading the keys in textual order.
        rankPattern = Self.ordered(f.rank_pattern ?? [:], key: "rank_pattern", in: data)
        alphaPattern = Self.ordered(f.alpha_pattern ?? [:], key: "alpha_pattern", in: data)
        for (k, v) in rankPattern where v <= 0 { throw SinkKitError(.adapter, "\(path): rank_pattern \(k) has non-positive rank \(v)") }
        switch f.layers_to_transform {
        case .one(let i)?: layersToTransform = [i]
        case .many(let l)?: layersToTransform = l
        case nil: layersToTransform = nil
        }
        baseModelName = f.base_model_name_or_path
        switch d["target_modules"] {
        case let s as String: targetModules = s == "all-linear" ? .allLinear : .regex(s)
        case let l as [Any]:
            let strs = l.compactMap { $0 as? String }
            guard strs.count == l.count else { throw SinkKitError(.adapter, "\(path): target_modules must be a string or a list of strings") }
            targetModules = .list(strs)
        default:
            throw SinkKitError(.adapter, "\(path): target_modules is missing (expected a list of module names or a regex)")
        }
        if case .regex(let p) = targetModules { _ = try PyRegex.compile(p, what: "\(path): target_modules") }
        for (k, _) in rankPattern { _ = try PyRegex.compile("(.*\\.)?(\(k))$", what: "\(path): rank_pattern key") }
        for (k, _) in alphaPattern { _ = try PyRegex.compile("(.*\\.)?(\(k))$", what: "\(path): alpha_pattern key") }
    }

    /// Dictionary entries in the order their keys first appear inside `"key": {...}` in the file.
    /// The entries of `dict` (the object at top-level `key` of the JSON in `data`) in the order the
    /// file lists them: JSON objects are unordered for JSONDecoder, and PEFT's pattern matching is
    /// "first match wins" in file order.
    static func ordered<V>(_ dict: [String: V], key: String, in data: Data) -> [(String, V)] {
        var order: [String] = []
        _ = try? data.withUnsafeBytes { raw in
            var s = JSONScanner(raw.bindMemory(to: UInt8.self), path: "adapter_config.json")
            try s.object { s, k in
                if k == key, try s.kind() == .object {
                    try s.object { s, inner in order.append(inner); try s.skip() }
                } else {
                    try s.skip()
                }
            }
        }
        let rank = Dictionary(order.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        return dict.map { ($0.key, $0.value) }.sorted { (rank[$0.0] ?? Int.max, $0.0) < (rank[$1.0] ?? Int.max, $1.0) }
    }

    /// PEFT's pattern lookup: the first key `k` with `re.match(rf"(.*\.)?({k})$", module)`.
    static func patternValue<V>(_ patterns: [(String, V)], module: String) -> V? {
        for (k, v) in patterns {
            guard let re = try? PyRegex.compile("(.*\\.)?(\(k))$", what: "rank/alpha pattern") else { continue }
            let r = NSRange(module.startIndex..<module.endIndex, in: module)
            if re.firstMatch(in: module, options: [.anchored], range: r) != nil { return v }
        }
        return nil
    }

    /// Rank and alpha for one module, after `rank_pattern` / `alpha_pattern`.
    public func rankAndAlpha(module: String) -> (r: Int, alpha: Double) {
        (Self.patternValue(rankPattern, module: module) ?? r, Self.patternValue(alphaPattern, module: module) ?? loraAlpha)
    }

    /// The LoRA scale for one module: alpha / r, or alpha / sqrt(r) with rsLoRA.
    public func scale(module: String) -> Double {
        let (r, a) = rankAndAlpha(module: module)
        return useRslora ? a / Double(r).squareRoot() : a / Double(r)
    }

    /// Whether PEFT would put a LoRA layer on this module (`check_target_module_exists`).
    public func targets(module: String, isOutputHead: Bool) throws -> Bool {
        let hit: Bool
        switch targetModules {
        case .list(let l): hit = l.contains { module == $0 || module.hasSuffix("." + $0) }
        case .regex(let p): hit = PyRegex.fullMatch(try PyRegex.compile(p, what: "target_modules"), module)
        case .allLinear: hit = !isOutputHead && !module.hasSuffix("embed_tokens")
        }
        guard hit else { return false }
        if let layers = layersToTransform {
            guard let idx = Self.layerIndex(module) else { return false }
            return layers.contains(idx)
        }
        return true
    }

    static func layerIndex(_ module: String) -> Int? {
        let parts = module.split(separator: ".")
        guard let i = parts.firstIndex(of: "layers"), i + 1 < parts.count else { return nil }
        return Int(parts[i + 1])
    }
}
