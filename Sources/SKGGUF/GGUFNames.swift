/// llama.cpp's tensor names for the llama architecture and transformers' names for the same
/// tensors (one table for the GGUF reader, the GGUF writer and llama.cpp importance matrices).
public enum GGUFNames {
    /// llama.cpp's per-layer module name -> transformers' (under `model.layers.N.`, before `.weight`).
    public static let perLayer = ["attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
                                  "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
                                  "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
                                  "ffn_down": "mlp.down_proj"]
    static let global = ["token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                         "output.weight": "lm_head.weight"]

    /// transformers' name of a llama.cpp tensor name (nil: not a llama tensor).
    public static func transformers(_ gguf: String) -> String? {
        if let g = global[gguf] { return g }
        let parts = gguf.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, String(layer) == parts[1],
              let module = perLayer[String(parts[2])], parts[3] == "weight" else { return nil }
        return "model.layers.\(layer).\(module).weight"
    }

    /// llama.cpp's name of a transformers tensor name (nil: not a llama tensor).
    public static func llamaCpp(_ hf: String) -> String? {
        if let g = global.first(where: { $0.value == hf })?.key { return g }
        let p = hf.split(separator: ".", maxSplits: 3).map(String.init)
        guard p.count == 4, p[0] == "model", p[1] == "layers", let l = Int(p[2]), p[3].hasSuffix(".weight"),
              let m = perLayer.first(where: { $0.value == String(p[3].dropLast(7)) })?.key else { return nil }
        return "blk.\(l).\(m).weight"
    }
}
