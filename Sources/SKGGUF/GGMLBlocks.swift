import SKCore

/// Where ggml's and SKM's layouts hold the same values: the block types (at group 32) and the byte
/// moves between them, and the q/k row order llama.cpp's converter uses. One place for the GGUF
/// reader (carrying blocks into SKM) and the GGUF writer (the way back).
public enum GGMLBlocks {
    /// ggml type id ↔ SKM type with the same block values at group 32.
    static let same: [(ggml: Int32, skm: QuantType)] = [(8, .int8), (2, .int4Sym), (3, .int4), (6, .int5Sym)]

    public static func skmType(ofGGML t: Int32) -> QuantType? { same.first { $0.ggml == t }?.skm }
    public static func ggmlType(of q: QuantType) -> Int32? { same.first { $0.skm == q }?.ggml }

    /// llama.cpp's row of transformers' row `r` of a q/k projection: llama.cpp interleaves each
    /// head's halves for its RoPE kernel, so its row h·D + 2p + i is transformers' h·D + i·D/2 + p.
    @inline(__always) public static func llamaCppRow(ofTransformersRow r: Int, headDim d: Int) -> Int {
        let h = r / d, w = r % d, half = d / 2
        return h * d + 2 * (w % half) + w / half
    }

    /// Copies `rows` rows of `rowBytes` bytes from `src` to `dst`, putting q/k rows in llama.cpp's
    /// order (`toLlamaCpp`) or back in transformers'. Whole rows move, so quantized blocks move with them.
    public static func copyQKRows(from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer, rows: Int, rowBytes: Int,
                                  headDim: Int, toLlamaCpp: Bool) {
        for r in 0..<rows {
            let l = llamaCppRow(ofTransformersRow: r, headDim: headDim)
            let (from, to) = toLlamaCpp ? (r, l) : (l, r)
            (dst + to * rowBytes).copyMemory(from: src + from * rowBytes, byteCount: rowBytes)
        }
    }

    /// Q5_0 blocks (f16 d; qh as a little-endian u32, bit j element j's fifth bit; qs[16]) as SKM
    /// int5-sym blocks (d; qs[16]; qh[4], the same bits: bit j%8 of byte j/8), in place, or back.
    public static func q5_0ToInt5Sym(_ b: UnsafeMutableRawBufferPointer) { move5(b, qhFrom: 2, qsFrom: 6, qsTo: 2, qhTo: 18) }
    public static func int5SymToQ5_0(_ b: UnsafeMutableRawBufferPointer) { move5(b, qhFrom: 18, qsFrom: 2, qsTo: 6, qhTo: 2) }

    private static func move5(_ b: UnsafeMutableRawBufferPointer, qhFrom: Int, qsFrom: Int, qsTo: Int, qhTo: Int) {
        var qs = [UInt8](repeating: 0, count: 16), qh = [UInt8](repeating: 0, count: 4)
        for o in stride(from: 0, to: b.count - 21, by: 22) {
            for j in 0..<16 { qs[j] = b[o + qsFrom + j] }
            for j in 0..<4 { qh[j] = b[o + qhFrom + j] }
            for j in 0..<16 { b[o + qsTo + j] = qs[j] }
            for j in 0..<4 { b[o + qhTo + j] = qh[j] }
        }
    }
}
