import ConduitProtocol

/// A cached completion told again as the stream a provider would have sent: the role, the text
/// in word-aligned pieces, the finish reason (carrying the `conduit` object), then usage when
/// it was asked for. No chunk a client did not ask for: ordinary client code reads
/// `chunk.choices[0]` from every chunk but the usage one.
enum CacheReplay {
    static let pieceLength = 48

    static func chunks(of completion: ChatCompletion, includeUsage: Bool) -> [ChatCompletionChunk] {
        let choice = completion.choices.first
        let text = choice?.message.content?.plainText ?? ""
        func chunk(_ delta: ChatCompletionChunk.Delta, finish: String? = nil) -> ChatCompletionChunk {
            ChatCompletionChunk(id: completion.id, created: completion.created, model: completion.model,
                                choices: [.init(index: 0, delta: delta, finishReason: finish)], usage: nil)
        }
        var chunks = [chunk(.init(role: "assistant", content: ""))]
        chunks += pieces(of: text).map { chunk(.init(content: $0)) }
        var finish = chunk(.init(), finish: choice?.finishReason ?? "stop")
        finish.conduit = completion.conduit
        chunks.append(finish)
        if includeUsage {
            chunks.append(ChatCompletionChunk(id: completion.id, created: completion.created, model: completion.model, choices: [], usage: completion.usage))
        }
        return chunks
    }

    /// Consecutive pieces of about `pieceLength` characters, cut after a space where possible;
    /// joined, they are exactly `text`.
    static func pieces(of text: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        for character in text {
            current.append(character)
            if current.count >= pieceLength, character == " " {
                pieces.append(current)
                current = ""
            } else if current.count >= pieceLength * 2 {
                pieces.append(current)
                current = ""
            }
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces
    }
}
