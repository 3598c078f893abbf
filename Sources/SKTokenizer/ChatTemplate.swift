import SKCore

/// Placeholder until the Jinja renderer lands.
public enum ChatTemplate {
    public static func render(_ tok: Tokenizer, messages: [[String: String]], addGenerationPrompt: Bool) throws -> String {
        throw SinkKitError(.refused, "chat templates are not implemented yet")
    }
}
