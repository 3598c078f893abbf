import Foundation
import SKTestSupport
import XCTest
@testable import SKRuntime
import SKConvert
import SKCore
import SKFormat

/// Every attention mode and cache policy (and their combinations) against the slow reference
/// (ReferenceAttention.swift) on the tiny fixture model, plus eviction unit tests.
final class AttentionPolicyTests: XCTestCase {
    static var file: String?
    func model() throws -> String {
        if let f = Self.file { return f }
        let out = Fixture.scratch() + "/tiny-f32.skm"
        _ = try SKMConverter(job: QuantizeJob(modelDirectory: Fixture.base("llama-f32"), type: .f32, output: out)).run()
        Self.file = out
        return out
    }

    let tokens = (0..<40).map { ($0 * 37 + 11) % 120 + 3 }

    /// Runs a prefill of `prefill` tokens in chunks of `chunk`, then decodes the rest one by one,
    /// comparing every logit with the reference, and checks the budget after every step.
    func check(sf sfGroup: Int?, _ policy: ReferenceModel.Policy, positions: PositionMode = .absolute, prefill: Int = 13, chunk: Int = 5,
               length: Int = 40, kv: KVDType = .f32, tolerance: Float = 1e-4, threads: Int = 2, line: UInt = #line) throws {
        let tokens = (0..<length).map { ($0 * 37 + 11) % 120 + 3 }
        let file = try SKMFile(path: try model())
        let m = try LlamaModel(path: file.path)
        let sinks = 2
        let sf = sfGroup.map { SFAttention(groupSize: $0, sinks: sinks, heads: m.config.numHeads) }
        let p: KVCachePolicy
        switch policy {
        case .full: p = FullCache()
        case .segment: p = SegmentCache(attention: sf!, heads: m.config.numHeads, kvHeads: m.config.numKVHeads)
        case .window(let b): p = WindowCache(budget: b, sinks: sinks)
        case .h2o(let b, let r): p = H2OCache(budget: b, sinks: sinks, recent: r)
        case .vatp(let b, let r): p = VATPCache(budget: b, sinks: sinks, recent: r)
        case .tova(let b): p = TOVACache(budget: b, sinks: sinks)
        case .snap(let b, let w, let a): p = try SnapKVCache(budget: b, sinks: sinks, window: w, allocation: a, layers: m.config.numLayers)
        }
        let s = try Session(model: m, context: 64, threads: threads, attention: AttentionConfig(sf: sf, policy: p, positions: positions, chunk: chunk, kvDType: kv))
        let ref = try ReferenceModel(file: file, sf: sf, policy: policy, sinks: sinks, positions: positions, halfKV: kv == .f16)
        ref.int8KV = kv == .int8
        ref.int4KV = kv == .int4
        ref.k8v4KV = kv == .k8v4
        ref.kiviKV = kv == .kivi4
        ref.kiviPinned = p.sinks
        if let snap = p as? SnapKVCache { ref.layerBudgets = snap.layerBudgets }
        var steps: [[Int]] = []
        var i = 0
        while i < prefill { steps.append(Array(tokens[i..<min(prefill, i + chunk)])); i += chunk }
        for t in tokens[prefill...] { steps.append([t]) }
        var worst: Float = 0
        for stepTokens in steps {
            let got = try s.forward(stepTokens, logitsFor: Array(0..<stepTokens.count))
            let want = ref.step(stepTokens).flatMap { $0 }
            for k in 0..<got.count { worst = max(worst, abs(got[k] - want[k])) }
            if let b = p.headCapacity { XCTAssertLessThanOrEqual(s.cache.maxSlots, b, "budget exceeded", line: line) }
            if let b = p.budget {
                let slots = (0..<m.config.numLayers).flatMap { l in (0..<m.config.numKVHeads).map { s.cache.head(layer: l, kvHead: $0).count } }
                XCTAssertLessThanOrEqual(slots.reduce(0, +), b * slots.count, "mean budget exceeded", line: line)
            }
            for l in 0..<m.config.numLayers {
                for kh in 0..<m.config.numKVHeads {
                    XCTAssertEqual(s.cache.head(layer: l, kvHead: kh).positions, ref.kept[l][kh], "layer \(l) KV head \(kh) holds other positions", line: line)
                }
            }
        }
        XCTAssertLessThanOrEqual(worst, tolerance, "max |logit − reference|", line: line)
    }

    func testFullAttentionFullCache() throws { try check(sf: nil, .full) }
    func testSFAttentionWithFullCache() throws { try check(sf: 8, .full) }
    func testSFAttentionWithSegmentCache() throws { try check(sf: 8, .segment) }
    func testSFAttentionShiftedGroupsWrapNothing() throws { try check(sf: 6, .segment, prefill: 1, chunk: 1) }
    func testWindow() throws { try check(sf: nil, .window(budget: 10)) }
    func testWindowCachePositions() throws { try check(sf: nil, .window(budget: 10), positions: .cache) }
    func testH2O() throws { try check(sf: nil, .h2o(budget: 10, recent: nil)) }
    func testH2OExplicitRecent() throws { try check(sf: nil, .h2o(budget: 12, recent: 3)) }
    /// VATP: prefill chunks and decode steps, an explicit recent window, absolute and cache
    /// positions, with SF-Attn, int8 KV.
    func testVATP() throws {
        try check(sf: nil, .vatp(budget: 10, recent: nil))
        try check(sf: nil, .vatp(budget: 12, recent: 3), positions: .cache)
        try check(sf: 8, .vatp(budget: 11, recent: nil))
        try check(sf: nil, .vatp(budget: 12, recent: 4), positions: .auto, prefill: 70, chunk: 7, length: 76, kv: .int8, tolerance: 5e-3)
    }
    /// TOVA: prefill chunks and decode steps, absolute and cache positions, with SF-Attn, int8 KV.
    func testTOVA() throws {
        try check(sf: nil, .tova(budget: 10))
        try check(sf: nil, .tova(budget: 10), positions: .cache)
        try check(sf: 8, .tova(budget: 11))
        try check(sf: nil, .tova(budget: 12), positions: .auto, prefill: 70, chunk: 7, length: 76, kv: .int8, tolerance: 5e-3)
    }
    /// SnapKV and its budget splits: prefill chunks and decode steps, positions, SF-Attn, int8 KV,
    /// and a chunk longer than the window (only its last queries score).
    func testSnapKV() throws {
        try check(sf: nil, .snap(budget: 12, window: 2, allocation: .uniform))
        try check(sf: nil, .snap(budget: 12, window: 3, allocation: .uniform), positions: .cache)
        try check(sf: 8, .snap(budget: 11, window: 2, allocation: .uniform))
        try check(sf: nil, .snap(budget: 14, window: 3, allocation: .uniform), positions: .auto, prefill: 70, chunk: 9, length: 76, kv: .int8, tolerance: 5e-3)
    }
    func testPyramidKV() throws {
        try check(sf: nil, .snap(budget: 12, window: 2, allocation: .pyramid))
        try check(sf: nil, .snap(budget: 10, window: 2, allocation: .pyramid), prefill: 20, chunk: 10, kv: .f16, tolerance: 2e-3)
    }
    func testAdaKV() throws {
        try check(sf: nil, .snap(budget: 12, window: 2, allocation: .adaptive))
        try check(sf: nil, .snap(budget: 9, window: 1, allocation: .adaptive), positions: .cache, prefill: 30, chunk: 6)
        try check(sf: 8, .snap(budget: 13, window: 2, allocation: .adaptive), kv: .int4, tolerance: 5e-2)
        try check(sf: nil, .snap(budget: 30, window: 2, allocation: .adaptive), prefill: 40, chunk: 8, length: 76)
    }
    /// Every bounded policy with every KV storage type, prefill chunks then decode steps: the kept
    /// slots equal the reference's and the logits are within the storage type's tolerance.
    func testEveryPolicyWithEveryKVType() throws {
        let policies: [ReferenceModel.Policy] = [.window(budget: 12), .h2o(budget: 12, recent: nil), .vatp(budget: 12, recent: nil), .tova(budget: 12),
                                                 .snap(budget: 12, window: 2, allocation: .uniform), .snap(budget: 12, window: 2, allocation: .pyramid),
                                                 .snap(budget: 12, window: 2, allocation: .adaptive)]
        for policy in policies {
            for (kv, tol) in [(KVDType.f32, Float(1e-4)), (.f16, 1e-2), (.int8, 1e-2), (.int4, 5e-2), (.k8v4, 5e-2), (.kivi4, 5e-2)] {
                try check(sf: nil, policy, prefill: 20, chunk: 7, length: 34, kv: kv, tolerance: tol)
            }
        }
    }
    /// Decode steps on one worker (4 query heads as two runs of 2, one per KV head) and split over
    /// three (runs of 1, 1 and 2 heads, the first two sharing KV head 0 from different workers;
    /// H2O, VATP and TOVA, which watch attention, by whole KV heads). Same logits and slots as the
    /// reference for every KV storage type, full, windowed and evicting by attention.
    func testDecodeWorkersSplitAKVGroup() throws {
        for threads in [1, 3] {
            for (kv, tol) in [(KVDType.f32, Float(1e-4)), (.f16, 1e-2), (.int8, 1e-2), (.int4, 5e-2), (.k8v4, 5e-2), (.kivi4, 5e-2)] {
                for policy: ReferenceModel.Policy in [.full, .window(budget: 10), .h2o(budget: 10, recent: nil), .vatp(budget: 10, recent: nil), .tova(budget: 10)] {
                    try check(sf: nil, policy, kv: kv, tolerance: tol, threads: threads)
                }
            }
        }
    }
    /// The softmax's maximum (sixteen lanes, then a tail) equals the plain one for every length
    /// around the lane counts, wherever the largest value sits.
    func testMaxOfEqualsPlainMax() {
        var g = SystemRandomNumberGenerator()
        for n in 0..<70 {
            for at in Set([0, n / 2, max(0, n - 1)]) where at < max(n, 1) {
                var x = (0..<n).map { _ in Float.random(in: -50...50, using: &g) }
                if n > 0 { x[at] = 60 + Float(at) }
                let want = x.max() ?? -.infinity
                x.withUnsafeBufferPointer { XCTAssertEqual(maxOf($0.baseAddress ?? UnsafePointer(bitPattern: 16)!, n), want, "n \(n), largest at \(at)") }
            }
        }
    }
    /// H2O's and TOVA's ranking, by scans (a few drops) and by one sort (many), against a sorted
    /// selection: random sizes, forced slots and tied scores, drops on both sides of the switch.
    func testRankedKeepEqualsSortedSelection() {
        var g = SystemRandomNumberGenerator()
        for _ in 0..<400 {
            let n = Int.random(in: 1...60, using: &g)
            let positions = (0..<n).map { $0 * 3 + Int.random(in: 0...2, using: &g) }
            let scores = (0..<n).map { _ in Double(Int.random(in: 0...4, using: &g)) / 4 }
            let forcedSet = Set((0..<n).filter { _ in Int.random(in: 0..<4, using: &g) == 0 })
            let best = Int.random(in: -2...n, using: &g)
            let rest = (0..<n).filter { !forcedSet.contains($0) }.sorted {
                scores[$0] != scores[$1] ? scores[$0] > scores[$1] : positions[$0] < positions[$1]
            }
            let want = forcedSet.union(rest.prefix(max(0, best))).sorted()
            let got = keepRanked(count: n, best: best, scores: scores, positions: positions) { forcedSet.contains($0) }
            XCTAssertEqual(got, want, "n \(n), best \(best), forced \(forcedSet.sorted())")
        }
    }
    /// Ada-KV really gives heads different budgets on this model (else the test above proves little).
    func testAdaKVSplitsUnevenly() throws {
        let m = try LlamaModel(path: try model())
        let p = try SnapKVCache(budget: 12, sinks: 2, window: 2, allocation: .adaptive, layers: m.config.numLayers)
        let s = try Session(model: m, context: 64, threads: 1, attention: AttentionConfig(sf: nil, policy: p, positions: .absolute, chunk: 5))
        for t in tokens { _ = try s.forward([t], logitsFor: [0]) }
        let counts = (0..<m.config.numLayers).flatMap { l in (0..<m.config.numKVHeads).map { s.cache.head(layer: l, kvHead: $0).count } }
        XCTAssertGreaterThan(Set(counts).count, 1, "every head holds \(counts)")
    }
    /// PyramidKV's budgets: linear from 2B − B/β down to B/β (raised to the minimum), summing to L·B.
    func testPyramidBudgets() {
        XCTAssertEqual(KVBudgetAllocation.pyramid.layerBudgets(mean: 400, layers: 5, minimum: 10), [780, 590, 400, 210, 20])
        XCTAssertEqual(KVBudgetAllocation.pyramid.layerBudgets(mean: 400, layers: 5, minimum: 100), [700, 550, 400, 250, 100])
        let b = KVBudgetAllocation.pyramid.layerBudgets(mean: 101, layers: 30, minimum: 69)
        XCTAssertEqual(b.reduce(0, +), 30 * 101)
        XCTAssertEqual(b.last, 69)
        XCTAssertEqual(b.first, 133)
        XCTAssertEqual(b, b.sorted(by: >))
        XCTAssertEqual(KVBudgetAllocation.uniform.layerBudgets(mean: 50, layers: 3, minimum: 9), [50, 50, 50])
        XCTAssertEqual(KVBudgetAllocation.pyramid.layerBudgets(mean: 50, layers: 1, minimum: 9), [50])
    }
    /// SnapKV's rule on a hand-made head: sinks, the newest window, then max-pooled scores.
    func testSnapKVRule() throws {
        let p = try SnapKVCache(budget: 9, sinks: 1, window: 2, layers: 1)
        // 12 slots; slot 9 (score 5) pools onto 6...9 (kernel 7: ±3); slot 2 (score 4) onto 1...5
        let scores: [Double] = [0, 0, 4, 0, 0, 0, 0, 0, 0, 5, 0, 0]
        XCTAssertEqual(SnapKVCache.pooled(Array(scores[0..<10])), [4, 4, 4, 4, 4, 4, 5, 5, 5, 5])
        let keep = p.keep(positions: [Array(0..<12)], scores: [scores], layerBudget: 9)!
        // target 7: sink 0, newest 10 and 11, then the 4 best of 1...9: 6, 7, 8, 9 (pooled 5)
        XCTAssertEqual(keep, [[0, 6, 7, 8, 9, 10, 11]])
        // with a tie for the last place, the lower position wins
        let tied = p.keep(positions: [Array(0..<12)], scores: [[0, 0, 5, 0, 0, 0, 0, 0, 0, 5, 0, 0]], layerBudget: 9)!
        XCTAssertEqual(tied, [[0, 1, 2, 3, 4, 10, 11]])
        XCTAssertNil(p.keep(positions: [Array(0..<9)], scores: [Array(scores[0..<9])], layerBudget: 9), "within the budget: no compression")
        XCTAssertThrowsError(try SnapKVCache(budget: 5, sinks: 1, window: 2, layers: 1), "budget below sinks + 2·window + 1")
    }
    /// Ada-KV's rule: the layer's share goes to the head that scores high, after each head's floor.
    func testAdaKVRule() throws {
        let p = try SnapKVCache(budget: 9, sinks: 1, window: 1, allocation: .adaptive, layers: 1)
        let hot = [0] + [Double](repeating: 9, count: 18) + [0]
        var cold = [Double](repeating: 0, count: 20)
        cold[18] = 1
        let keep = p.keep(positions: [Array(0..<20), Array(0..<20)], scores: [hot, cold], layerBudget: 9)!
        // target 8 per head: each keeps sink 0 and the newest (19); floors: Int(0.2·6) = 1 each
        // (head 0: slot 1; head 1: slot 15, the first pooled 1); the other 10 all go to head 0
        XCTAssertEqual(keep, [[0] + Array(1...11) + [19], [0, 15, 19]])
    }
    func testH2OCachePositions() throws { try check(sf: nil, .h2o(budget: 10, recent: nil), positions: .cache) }
    func testSFWithH2O() throws { try check(sf: 8, .h2o(budget: 10, recent: nil)) }
    func testSFWithWindow() throws { try check(sf: 8, .window(budget: 9), positions: .cache) }
    /// auto positions past the tiny model's trained context (64): a prefill chunk straddles it
    /// (absolute rows and cache rows in one block), then decode steps continue in cache mode.
    func testAutoPositionsAcrossTheTrainedContext() throws {
        try check(sf: nil, .window(budget: 10), positions: .auto, prefill: 72, chunk: 9, length: 80)
        try check(sf: nil, .h2o(budget: 12, recent: 4), positions: .auto, prefill: 70, chunk: 7, length: 76)
    }
    /// An f16 KV cache against a reference that stores its keys and values rounded to f16: full
    /// and bounded caches, both position modes, SF-Attn, prefill and decode, the same kept
    /// positions at every step. The logits tolerance is wider than f32's: a 1e-7 difference in a
    /// key before rounding can move it to the neighbouring half (2^-11 relative); measured worst
    /// 2.7e-3 here (3.1e-3 to 4.4e-3 against the unrounded reference). The storage itself is
    /// checked exactly below.
    func testHalfPrecisionKVCache() throws {
        try check(sf: nil, .full, kv: .f16, tolerance: 5e-3)
        try check(sf: 8, .segment, kv: .f16, tolerance: 5e-3)
        try check(sf: nil, .window(budget: 10), positions: .cache, kv: .f16, tolerance: 5e-3)
        try check(sf: nil, .h2o(budget: 12, recent: 4), positions: .auto, prefill: 70, chunk: 7, length: 76, kv: .f16, tolerance: 5e-3)
    }

    /// An int8 KV cache against a reference that rounds its keys and values by the same rule
    /// (written out independently): every policy and position mode, SF-Attn, prefill and decode,
    /// the same kept positions at every step.
    func testInt8KVCache() throws {
        try check(sf: nil, .full, kv: .int8, tolerance: 5e-3)
        try check(sf: 8, .segment, kv: .int8, tolerance: 5e-3)
        try check(sf: nil, .window(budget: 10), positions: .cache, kv: .int8, tolerance: 5e-3)
        try check(sf: nil, .h2o(budget: 12, recent: 4), positions: .auto, prefill: 70, chunk: 7, length: 76, kv: .int8, tolerance: 5e-3)
    }

    /// int4 KV against a reference rounding by the same rule. A key 1e-7 apart before rounding can
    /// land one code (a seventh of the block's largest value) away, so the logits tolerance is wider.
    func testInt4KVCache() throws {
        try check(sf: nil, .full, kv: .int4, tolerance: 0.05)
        try check(sf: nil, .window(budget: 10), positions: .cache, kv: .int4, tolerance: 0.05)
        try check(sf: nil, .h2o(budget: 12, recent: 4), kv: .int4, tolerance: 0.05)
    }

    /// The int8 cache holds 8.5 bits per element... here head_dim 8 (one block per vector): (2 + 8)
    /// bytes per vector, against f32's 32.
    func testInt8KVCacheBytes() throws {
        let m = try LlamaModel(path: try model())
        let a = try Session(model: m, context: 64, threads: 2)
        let b = try Session(model: m, context: 64, threads: 2, attention: AttentionConfig(kvDType: .int8))
        XCTAssertEqual(b.cache.bytes * 32, a.cache.bytes * 10)
        XCTAssertEqual(KVDType.int8.keyBytes(headDim: 64), 68)
        XCTAssertEqual(KVDType.int8.slotBytes(headDim: 64), 136)
        // k8v4: an int8 key (2 + 8 bytes) and an int4 value (2 + 4) per slot
        let c = try Session(model: m, context: 64, threads: 2, attention: AttentionConfig(kvDType: .k8v4))
        XCTAssertEqual(c.cache.bytes * 64, a.cache.bytes * 16)
        XCTAssertEqual(KVDType.k8v4.slotBytes(headDim: 64), 68 + 36)
    }

    /// k8v4 stores each key as an int8 cache does and each value as an int4 cache does, byte for
    /// byte (layer 0's keys and values come from identical inputs in the three sessions), and its
    /// logits follow the reference with int8 keys and int4 values, bounded policies included.
    func testK8V4KVCache() throws {
        let m = try LlamaModel(path: try model())
        let sessions = try [KVDType.int8, .int4, .k8v4].map { try Session(model: m, context: 64, threads: 2, attention: AttentionConfig(kvDType: $0)) }
        for s in sessions { _ = try s.forward(Array(tokens[0..<13]), logitsFor: [12]) }
        for kh in 0..<m.config.numKVHeads {
            let (i8, i4, mixed) = (sessions[0].cache.head(layer: 0, kvHead: kh).storage as! KVStorageBase,
                                   sessions[1].cache.head(layer: 0, kvHead: kh).storage as! KVStorageBase,
                                   sessions[2].cache.head(layer: 0, kvHead: kh).storage as! KVStorageBase)
            XCTAssertEqual(mixed.keyRowBytes, i8.keyRowBytes)
            XCTAssertEqual(mixed.valueRowBytes, i4.valueRowBytes)
            XCTAssertEqual(Data(bytes: mixed.keys, count: 13 * mixed.keyRowBytes), Data(bytes: i8.keys, count: 13 * i8.keyRowBytes), "KV head \(kh) keys")
            XCTAssertEqual(Data(bytes: mixed.values, count: 13 * mixed.valueRowBytes), Data(bytes: i4.values, count: 13 * i4.valueRowBytes), "KV head \(kh) values")
        }
        try check(sf: nil, .full, kv: .k8v4, tolerance: 0.02)
        try check(sf: 8, .segment, kv: .k8v4, tolerance: 0.02)
        try check(sf: nil, .h2o(budget: 12, recent: 4), kv: .k8v4, tolerance: 0.02)
        try check(sf: nil, .snap(budget: 14, window: 3, allocation: .uniform), positions: .auto, prefill: 70, chunk: 9, length: 76, kv: .k8v4, tolerance: 0.02)
    }

    /// kivi4 against a reference that holds keys as f16 until 32 have been stored since the last
    /// seal and then seals the kept ones per channel (ReferenceAttention.swift's `kiviSealed`):
    /// full cache (three seals), SF-Attn, a window and H2O over prompts and decode steps that
    /// cross seals with slots evicted before and after them, and SnapKV compressing a prompt.
    func testKIVIKVCache() throws {
        try check(sf: nil, .full, length: 64, kv: .kivi4, tolerance: 0.05)
        try check(sf: 8, .segment, length: 64, kv: .kivi4, tolerance: 0.05)
        try check(sf: nil, .window(budget: 10), positions: .cache, prefill: 40, chunk: 9, length: 76, kv: .kivi4, tolerance: 0.05)
        try check(sf: nil, .h2o(budget: 12, recent: 4), prefill: 70, chunk: 7, length: 76, kv: .kivi4, tolerance: 0.05)
        try check(sf: nil, .h2o(budget: 20, recent: 6), prefill: 5, chunk: 5, length: 76, kv: .kivi4, tolerance: 0.05)
        try check(sf: nil, .snap(budget: 14, window: 3, allocation: .uniform), positions: .auto, prefill: 70, chunk: 9, length: 76, kv: .kivi4, tolerance: 0.05)
    }

    /// kivi4's bytes: per slot a key's codes and group id (4 + 4 bytes at head_dim 8) and an int4
    /// value (2 + 4); beside the slots the sinks' and the unsealed keys ((2 + 32) × 8 f16) and the groups' scales
    /// (8 + 8 f16 each), held only while a kept slot refers to them: a window keeps at most
    /// budget / 32 + 2 groups over a long stream, and `reset` forgets them all.
    func testKIVIKVCacheBytes() throws {
        let m = try LlamaModel(path: try model())
        XCTAssertEqual(KVDType.kivi4.slotBytes(headDim: 8), 8 + 6)
        XCTAssertEqual(KVDType.kivi4.slotBytes(headDim: 64), 36 + 36)
        // a full cache: what `headBytes` (the context check's estimate) says is what is allocated
        let full = try Session(model: m, context: 64, threads: 2, attention: AttentionConfig(kvDType: .kivi4))
        XCTAssertEqual(full.cache.bytes, m.config.numLayers * m.config.numKVHeads * KVDType.kivi4.headBytes(slots: 64, headDim: 8)!)
        XCTAssertEqual(KVDType.kivi4.headBytes(slots: 64, headDim: 8), 64 * 14 + (32 + 2 * 3) * 8 * 2)
        XCTAssertEqual(KVDType.int8.headBytes(slots: 64, headDim: 64), 64 * 136)
        XCTAssertNil(KVDType.kivi4.headBytes(slots: Int.max / 2, headDim: 64))
        let s = try Session(model: m, context: 80, threads: 2,
                            attention: AttentionConfig(policy: WindowCache(budget: 40, sinks: 2), chunk: 8, kvDType: .kivi4))
        for t in 0..<200 { _ = try s.forward([(t * 37 + 11) % 120 + 3], logitsFor: []) }
        let store = s.cache.head(layer: 0, kvHead: 0).storage as! KIVIKVStorage
        XCTAssertLessThanOrEqual(store.groupCapacity, 40 / 32 + 2 + 1)
        XCTAssertEqual(store.pinned, 2)
        XCTAssertEqual(store.sideBytes, (2 + 32 + 2 * store.groupCapacity) * 8 * 2)
        XCTAssertEqual(s.cache.bytes, m.config.numLayers * m.config.numKVHeads * (s.cache.capacity * 14 + store.sideBytes))
        // after `reset` the seals fall where a fresh session's do: the same logits, bit for bit
        s.reset()
        let fresh = try Session(model: m, context: 80, threads: 2,
                                attention: AttentionConfig(policy: WindowCache(budget: 40, sinks: 2), chunk: 8, kvDType: .kivi4))
        let prompt = (0..<45).map { ($0 * 13 + 5) % 120 + 3 }
        XCTAssertEqual(try s.forward(prompt, logitsFor: [44]), try fresh.forward(prompt, logitsFor: [44]))
        XCTAssertEqual(try s.forward([9], logitsFor: [0]), try fresh.forward([9], logitsFor: [0]))
    }

    /// A kivi4 full cache rolled back (the server's prefix reuse) twice: to 40 (keeping pending
    /// keys), extended past a seal, then to 45 (into that group), extended by decode steps:
    /// every layer-0 key (identical inputs in f32 sessions) reads back within half a step of its
    /// channel's range over every key ever stored, whichever group holds it (a dangling group id
    /// or a reused pending index reads another key's scales or another key).
    func testKIVIKVCacheRollBack() throws {
        let m = try LlamaModel(path: try model())
        let a = (0..<50).map { ($0 * 37 + 11) % 120 + 3 }, b = (0..<40).map { ($0 * 29 + 7) % 120 + 3 }
        let rolled = try Session(model: m, context: 96, threads: 2, attention: AttentionConfig(kvDType: .kivi4))
        _ = try rolled.forward(a, logitsFor: [])
        try rolled.truncate(to: 40)
        _ = try rolled.forward(Array(b[0..<20]), logitsFor: [])
        try rolled.truncate(to: 45)
        for t in b[20...] { _ = try rolled.forward([t], logitsFor: []) }
        // f32 sessions over each stream the cache has seen: their layer-0 keys are the exact ones
        let streams = [a, Array(a[0..<40]) + Array(b[0..<20]), Array(a[0..<40]) + Array(b[0..<5]) + Array(b[20...])]
        let exact = try streams.map { seq in
            let s = try Session(model: m, context: 96, threads: 2)
            _ = try s.forward(seq, logitsFor: [])
            return s
        }
        let hd = m.config.headDim
        func keys(_ s: Session, _ kh: Int, _ n: Int) -> [[Float]] {
            (0..<n).map { j in
                var k = [Float](repeating: 0, count: hd), v = k
                s.cache.head(layer: 0, kvHead: kh).storage.read(slot: j, key: &k, value: &v)
                return k
            }
        }
        for kh in 0..<m.config.numKVHeads {
            XCTAssertEqual(rolled.cache.head(layer: 0, kvHead: kh).positions, Array(0..<65))
            let got = keys(rolled, kh, 65), want = keys(exact[2], kh, 65)
            let all = keys(exact[0], kh, 50) + keys(exact[1], kh, 60) + want
            for c in 0..<hd {
                let col = all.map { $0[c] }, step = (col.max()! - col.min()!) / 15
                for j in 0..<65 {
                    XCTAssertLessThanOrEqual(abs(got[j][c] - want[j][c]), step * 0.51 + 2e-3 * abs(want[j][c]) + 1e-6,
                                             "KV head \(kh) slot \(j) channel \(c)")
                }
            }
        }
    }

    /// `rollbackPoint`: a kivi4 cache rolled back to it continues exactly as a fresh session fed
    /// the same chunks would (the same groups sealed with the same members): bit for bit, while
    /// rolling back into a group does not; the other types roll back anywhere.
    func testKIVIRollbackPointContinuesAsAFreshSession() throws {
        let m = try LlamaModel(path: try model())
        let a = (0..<50).map { ($0 * 37 + 11) % 120 + 3 }, b = (0..<30).map { ($0 * 29 + 7) % 120 + 3 }
        func session(_ kv: KVDType) throws -> Session { try Session(model: m, context: 96, threads: 2, attention: AttentionConfig(kvDType: kv)) }
        let rolled = try session(.kivi4), fresh = try session(.kivi4), inside = try session(.kivi4)
        XCTAssertEqual(rolled.rollbackPoint(45), 32)
        XCTAssertEqual(rolled.rollbackPoint(31), 0)
        XCTAssertEqual(try session(.int4).rollbackPoint(45), 45)
        _ = try rolled.forward(a, logitsFor: [])
        try rolled.truncate(to: rolled.rollbackPoint(45))
        _ = try fresh.forward(Array(a[0..<32]), logitsFor: [])
        let got = try rolled.forward(Array(a[32..<45]) + b, logitsFor: Array(0..<43))
        XCTAssertEqual(got, try fresh.forward(Array(a[32..<45]) + b, logitsFor: Array(0..<43)))
        // rolled back into the sealed group instead (to 20, then other tokens): slots 0..<20 keep
        // the scales of a group sealed with the first stream's positions 20..<32, which a fresh
        // session never sees
        let fresh20 = try session(.kivi4)
        _ = try inside.forward(a, logitsFor: [])
        try inside.truncate(to: 20)
        _ = try fresh20.forward(Array(a[0..<20]), logitsFor: [])
        XCTAssertNotEqual(try inside.forward(b, logitsFor: Array(0..<30)), try fresh20.forward(b, logitsFor: Array(0..<30)))
    }

    /// Layer 0's keys and values reach the cache from identical inputs in an f32 and an f16
    /// session: the f16 cache holds exactly their round-to-nearest-even halves, in half the bytes.
    func testHalfPrecisionKVCacheStoresRoundedValues() throws {
        let m = try LlamaModel(path: try model())
        let a = try Session(model: m, context: 64, threads: 2)
        let b = try Session(model: m, context: 64, threads: 2, attention: AttentionConfig(kvDType: .f16))
        _ = try a.forward(Array(tokens[0..<13]), logitsFor: [12])
        _ = try b.forward(Array(tokens[0..<13]), logitsFor: [12])
        XCTAssertEqual(b.cache.bytes * 2, a.cache.bytes)
        let hd = m.config.headDim
        for kh in 0..<m.config.numKVHeads {
            let f = a.cache.head(layer: 0, kvHead: kh), h = b.cache.head(layer: 0, kvHead: kh)
            XCTAssertEqual(h.count, 13)
            let fs = f.storage as! KVStorageBase, hs = h.storage as! KVStorageBase
            for (src, dst) in [(fs.keys, hs.keys), (fs.values, hs.values)] {
                let x = src.assumingMemoryBound(to: Float.self), y = dst.assumingMemoryBound(to: UInt16.self)
                for i in 0..<(13 * hd) { XCTAssertEqual(y[i], Float16(x[i]).bitPattern, "KV head \(kh) element \(i)") }
            }
        }
    }
    func testChunkBoundaries() throws {
        for chunk in [1, 4, 13] { try check(sf: nil, .h2o(budget: 10, recent: 4), chunk: chunk) }
    }

    // MARK: eviction unit tests

    func cache(_ positions: [Int]) -> HeadCache {
        let h = HeadCache(capacity: 64, headDim: 2)
        var kv: [Float] = [0, 0]
        for p in positions { kv.withUnsafeBufferPointer { h.append(key: $0.baseAddress!, value: $0.baseAddress!, position: p) } }
        return h
    }

    func testTOVAKeepsSinksNewestAndMostAttended() {
        // positions 0..9; sinks 2; budget 6 → sinks, 9, then the 3 largest weights (ties → lower position)
        let keep = TOVACache(budget: 6, sinks: 2).keep(positions: Array(0..<10), weights: [9, 9, 0.1, 0.5, 0.2, 0.5, 0.05, 0.3, 0.3, 0])
        XCTAssertEqual(keep, [0, 1, 3, 5, 7, 9])
    }

    func testH2OKeepsSinksHeavyHittersAndRecent() {
        // positions 0..9; sinks 2; budget 6 → recent 2, heavy 2
        let positions = Array(0..<10)
        let keep = H2OCache(budget: 6, sinks: 2, recent: nil).keep(positions: positions, scores: [0, 0, 5, 1, 9, 1, 5, 0, 0, 0])
        // heavy: 4 (score 9), then the tie 2 vs 6 (score 5) → lower position 2
        XCTAssertEqual(keep.map { positions[$0] }, [0, 1, 2, 4, 8, 9])
    }

    func testVATPRanksByAttentionPerQueryTimesValueNorm() {
        // positions 0..9, next 10; sinks 2; budget 6 → recent 2, heavy 2, among positions 2...7:
        // acc / (10 − p) · |v|₁: 2: 8/8·1 = 1, 3: 4/7·1 ≈ 0.57, 4: 6/6·1 = 1, 5: 5/5·0.5 = 0.5,
        // 6: 2/4·4 = 2, 7: 3/3·0.1 = 0.1 → 6, then the tie 2 vs 4 → lower position 2.
        // H2O would keep 2 and 4 (the largest sums, 8 and 6).
        let positions = Array(0..<10)
        let scores: [Double] = [0, 0, 8, 4, 6, 5, 2, 3, 0, 0]
        let norms: [Double] = [1, 1, 1, 1, 1, 0.5, 4, 0.1, 1, 1]
        let keep = VATPCache(budget: 6, sinks: 2, recent: nil).keep(positions: positions, scores: scores, valueNorms: norms, nextPosition: 10)
        XCTAssertEqual(keep, [0, 1, 2, 6, 8, 9])
        XCTAssertEqual(H2OCache(budget: 6, sinks: 2, recent: nil).keep(positions: positions, scores: scores), [0, 1, 2, 4, 8, 9])
        // under budget: everything stays
        XCTAssertEqual(VATPCache(budget: 12, sinks: 2, recent: nil).keep(positions: positions, scores: scores, valueNorms: norms, nextPosition: 10), Array(0..<10))
    }

    func testSinksAreNeverEvictedEvenWithZeroScore() {
        let positions = Array(0..<20)
        let keep = H2OCache(budget: 8, sinks: 4, recent: 2).keep(positions: positions, scores: (0..<20).map { $0 < 4 ? 0 : Double($0) })
        XCTAssertEqual(Array(keep.map { positions[$0] }.prefix(4)), [0, 1, 2, 3])
        XCTAssertEqual(keep.count, 8)
    }

    /// H2O's scores live in its evictor: what attention reports through `observe` is what the
    /// rule ranks, and eviction compacts the scores with the slots.
    func testH2OEvictorAccumulatesObservedWeights() {
        let rule = H2OCache(budget: 4, sinks: 1, recent: 1)
        let ev = rule.makeEvictor(layers: 1, kvHeads: 1)
        XCTAssertTrue(ev.observesAttention)
        let h = cache(Array(0..<6))
        var slots = Array(0..<6)
        var w: [Float] = [0.1, 0.3, 0.05, 0.4, 0.05, 0.1]
        ev.observe(layer: 0, kvHead: 0, slots: &slots, weights: &w, count: 6)
        ev.observe(layer: 0, kvHead: 0, slots: &slots, weights: &w, count: 6)
        let keep = ev.keep(h, layer: 0, kvHead: 0, nextPosition: 6)
        XCTAssertEqual(keep, [0, 1, 3, 5])          // sink 0, heavy 3 (0.8) and 1 (0.6), recent 5
        h.compact(keep: keep)
        // the survivors keep their scores: slot 2 (was 3) now outranks a newcomer at zero
        var s2 = Array(0..<4)
        var z: [Float] = [0, 0, 0, 0]
        ev.observe(layer: 0, kvHead: 0, slots: &s2, weights: &z, count: 4)
        var kv: [Float] = [0, 0]
        kv.withUnsafeBufferPointer { h.append(key: $0.baseAddress!, value: $0.baseAddress!, position: 6) }
        XCTAssertEqual(ev.keep(h, layer: 0, kvHead: 0, nextPosition: 7).map { h.positions[$0] }, [0, 1, 3, 6])
    }

    func testWindowKeepsSinksAndRecent() {
        let h = cache(Array(0..<12))
        XCTAssertEqual(WindowCache(budget: 6, sinks: 2).keep(h, kvHead: 0, nextPosition: 12).map { h.positions[$0] }, [0, 1, 8, 9, 10, 11])
    }

    func testBudgetArithmetic() {
        let h = H2OCache(budget: 100, sinks: 4, recent: nil)
        XCTAssertEqual(h.recent, 48)
        XCTAssertEqual(h.heavy, 48)
        XCTAssertEqual(H2OCache(budget: 100, sinks: 4, recent: 10).heavy, 86)
        XCTAssertEqual(SegmentCache(attention: SFAttention(groupSize: 64, sinks: 4, heads: 9), heads: 9, kvHeads: 3).budget, 100)
    }

    func testSFMask() {
        let sf = SFAttention(groupSize: 8, sinks: 2, heads: 9)
        XCTAssertFalse(sf.isShifted(head: 3))
        XCTAssertTrue(sf.isShifted(head: 4))              // h ≥ 9 / 2 = 4: heads 4…8 shift
        XCTAssertTrue(sf.allowed(head: 0, query: 9, key: 8))
        XCTAssertFalse(sf.allowed(head: 0, query: 9, key: 7))   // other segment
        XCTAssertTrue(sf.allowed(head: 0, query: 9, key: 1))    // sink
        XCTAssertTrue(sf.allowed(head: 5, query: 9, key: 4))    // shifted: segment [4, 12)
        XCTAssertFalse(sf.allowed(head: 5, query: 9, key: 3))
        XCTAssertFalse(sf.allowed(head: 5, query: 3, key: 4))   // causal
    }

    /// The two-level cos/sin table used by the cache position mode against direct trig
    /// (`Rope.rotate`), for deltas inside each table, across the 1024 boundary, beyond both
    /// tables (fallback) and negative, at SmolLM2's head size and theta.
    func testRopeDeltaTableMatchesDirectTrig() {
        let half = 32
        let invFreq = (0..<half).map { 1.0 / pow(100_000.0, Double(2 * $0) / 64) }
        let table = RopeDeltaTable(invFreq: invFreq)
        var rng = SystemRandomNumberGenerator()
        let x = (0..<64).map { _ in Float.random(in: -2...2, using: &rng) }
        for delta in [0, 1, -1, 7, 1023, 1024, 1025, -4097, 16_383, -52_190, 1 << 20 - 1, -(1 << 20), 3_000_000] {
            var want = x, got = [Float](repeating: 0, count: 64)
            // reference: Double trig per frequency
            for i in 0..<half {
                let a = Double(delta) * invFreq[i], c = Float(cos(a)), s = Float(sin(a))
                want[i] = x[i] * c - x[i + half] * s
                want[i + half] = x[i + half] * c + x[i] * s
            }
            x.withUnsafeBufferPointer { xp in got.withUnsafeMutableBufferPointer { table.rotate(xp.baseAddress!, to: $0.baseAddress!, by: delta) } }
            for d in 0..<64 { XCTAssertEqual(got[d], want[d], accuracy: 2e-5, "delta \(delta), dim \(d)") }
        }
    }
}
