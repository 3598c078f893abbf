import SKCore

/// Renders a model's chat template (from tokenizer_config.json, carried in the SKM file) the way
/// transformers' `apply_chat_template` does.
public enum ChatTemplate {
    public static func render(template: String, messages: [[String: String]], addGenerationPrompt: Bool,
                              bosToken: String, eosToken: String) throws -> String {
        guard !template.isEmpty else { throw SinkKitError(.refused, "this model has no chat template") }
        do {
            let t = try JinjaTemplate(template)
            return try t.render([
                "messages": .list(messages.map { .dict($0.mapValues { .string($0) }) }),
                "add_generation_prompt": .bool(addGenerationPrompt),
                "bos_token": .string(bosToken), "eos_token": .string(eosToken),
            ])
        } catch let e as JinjaError {
            throw SinkKitError(.invalidArgument, "chat template: \(e.description)")
        }
    }

    public static func render(_ tok: Tokenizer, messages: [[String: String]], addGenerationPrompt: Bool) throws -> String {
        try render(template: tok.chatTemplate, messages: messages, addGenerationPrompt: addGenerationPrompt,
                   bosToken: tok.bosToken, eosToken: tok.eosToken)
    }
}
