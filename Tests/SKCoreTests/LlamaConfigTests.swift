import Foundation
import SKTestSupport
import XCTest
import SKCore
import SKModel

final class LlamaConfigTests: XCTestCase {
    func parse(_ json: String) throws -> LlamaConfig { try LlamaConfig(data: Data(json.utf8), path: "config.json") }
    let base = #""model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":8,"vocab_size":100,"max_position_embeddings":4096"#

    func testDefaultsFollowTransformers() throws {
        let c = try parse("{\(base)}")
        XCTAssertEqual(c.numKeyValueHeads, 8)
        XCTAssertEqual(c.headDim, 8)
        XCTAssertEqual(c.rmsNormEps, 1e-6)
        XCTAssertEqual(c.ropeTheta, 10000)
        XCTAssertFalse(c.tieWordEmbeddings)
        XCTAssertNil(c.ropeScaling)
        XCTAssertEqual(c.trainedContext, 4096)
    }

    /// Phi-3's longrope: both factor lists of head_dim/2, original_max_position_embeddings from the
    /// top level (Hugging Face's Phi-3 configs) or the rope parameters, "su" read as longrope; what
    /// would change the math unread is refused by name.
    func testLongropeAndItsRefusals() throws {
        let phi = #""model_type":"phi3","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":8,"vocab_size":100,"max_position_embeddings":4096"#
        let f4 = "[1.0, 1.5, 2.0, 3.0]"
        let c = try parse("{\(phi),\"original_max_position_embeddings\":1024,\"rope_scaling\":{\"type\":\"su\",\"short_factor\":\(f4),\"long_factor\":\(f4)}}")
        XCTAssertEqual(c.ropeScaling?.type, "longrope")
        XCTAssertEqual(c.ropeScaling?.originalMaxPositionEmbeddings, 1024)
        XCTAssertEqual(c.ropeScaling?.longFactor, [1, 1.5, 2, 3])
        XCTAssertTrue(c.family.fusedProjections)
        for (json, message) in [
            ("\"original_max_position_embeddings\":1024,\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1.0],\"long_factor\":\(f4)}", "short_factor must list head_dim/2 = 4"),
            ("\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":\(f4),\"long_factor\":\(f4)}", "needs original_max_position_embeddings"),
            ("\"original_max_position_embeddings\":1024,\"rope_parameters\":{\"rope_type\":\"longrope\",\"short_factor\":\(f4),\"long_factor\":\(f4),\"partial_rotary_factor\":0.5}", "partial_rotary_factor 0.5"),
            ("\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0,\"short_factor\":\(f4)}", "belong to longrope"),
        ] {
            XCTAssertThrowsError(try parse("{\(phi),\(json)}"), json) { e in
                XCTAssertTrue("\(e)".contains(message), "\(e)")
            }
        }
    }

    /// Gemma 2: tied by default, the window on the layers layer_types names, soft-capping read;
    /// a layer_types list that does not fit, or bidirectional attention, refused by name.
    func testGemma2ConfigAndRefusals() throws {
        let g = #""model_type":"gemma2","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":8,"vocab_size":100,"max_position_embeddings":4096,"hidden_activation":"gelu_pytorch_tanh","sliding_window":16"#
        let c = try parse("{\(g),\"layer_types\":[\"sliding_attention\",\"full_attention\"],\"attn_logit_softcapping\":50.0,\"final_logit_softcapping\":30.0,\"query_pre_attn_scalar\":256}")
        XCTAssertTrue(c.tieWordEmbeddings)
        XCTAssertEqual(c.slidingLayers, [true, false])
        XCTAssertEqual(c.finalLogitSoftcapping, 30)
        for (json, message) in [
            ("\"layer_types\":[\"sliding_attention\"]", "layer_types must name each of the 2 layers"),
            ("\"layer_types\":[\"full_attention\",\"full_attention\"],\"use_bidirectional_attention\":true", "use_bidirectional_attention"),
            ("\"layer_types\":[\"full_attention\",\"full_attention\"],\"hidden_activation\":\"gelu\"", "activation"),
        ] {
            XCTAssertThrowsError(try parse("{\(g.replacingOccurrences(of: "\"hidden_activation\":\"gelu_pytorch_tanh\",", with: json.contains("hidden_activation") ? "" : "\"hidden_activation\":\"gelu_pytorch_tanh\",")),\(json)}"), json) { e in
                XCTAssertTrue("\(e)".contains(message), "\(e)")
            }
        }
        XCTAssertThrowsError(try parse("{\(base),\"attn_logit_softcapping\":50.0}"), "soft-capping is not part of a Llama model")
    }

    func testExplicitHeadDimAndGQA() throws {
        let c = try parse("{\(base),\"num_key_value_heads\":2,\"head_dim\":16}")
        XCTAssertEqual(c.qDim, 128)
        XCTAssertEqual(c.kvDim, 32)
    }

    func testRopeScalingBothSpellingsAndRopeParameters() throws {
        XCTAssertEqual(try parse("{\(base),\"rope_scaling\":{\"type\":\"linear\",\"factor\":8}}").ropeScaling?.type, "linear")
        let d = try parse("{\(base),\"rope_scaling\":{\"rope_type\":\"dynamic\",\"factor\":2.0}}")
        XCTAssertEqual(d.ropeScaling?.type, "dynamic")
        let l = try parse("{\(base),\"rope_scaling\":{\"type\":\"linear\",\"factor\":8}}")
        XCTAssertEqual(l.trainedContext, 32768)
        let p = try parse("{\(base),\"rope_parameters\":{\"rope_type\":\"yarn\",\"factor\":4.0,\"rope_theta\":500000.0}}")
        XCTAssertEqual(p.ropeScaling?.type, "yarn")
        XCTAssertEqual(p.ropeTheta, 500000)
        XCTAssertNil(try parse("{\(base),\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":100.0}}").ropeScaling)
        let l3 = #"{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}"#
        XCTAssertEqual(try parse("{\(base),\"rope_scaling\":\(l3)}").ropeScaling?.highFreqFactor, 4)
    }

    func testEosListAndQwenBias() throws {
        let c = try parse(#"{"model_type":"qwen2","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":8,"vocab_size":100,"max_position_embeddings":4096,"eos_token_id":[1,2]}"#)
        XCTAssertEqual(c.eosTokenIds, [1, 2])
        XCTAssertTrue(c.attentionBias)
    }

    func testErrors() {
        func expect(_ json: String, _ text: String, line: UInt = #line) {
            XCTAssertThrowsError(try parse(json), line: line) { e in
                let e = e as! SinkKitError
                XCTAssertEqual(e.kind, .config, line: line)
                XCTAssertTrue(e.message.contains(text), "\(e.message)", line: line)
            }
        }
        expect("{\(base.replacingOccurrences(of: "\"vocab_size\":100,", with: ""))}", "missing required field vocab_size")
        expect("{\(base),\"num_key_value_heads\":3}", "not a multiple")
        expect("{\(base),\"rope_scaling\":{\"type\":\"su\",\"factor\":2}}", "longrope rope_scaling.short_factor must list")
        expect("{\(base),\"rope_scaling\":{\"type\":\"ntk-by-parts\",\"factor\":2}}", "not supported")
        expect("{\(base),\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":2}}", "llama3 rope_scaling needs")
        expect("{\(base),\"tie_word_embeddings\":1}", "tie_word_embeddings")
        expect("[1]", "not a JSON object")
    }
}
