import ConduitProtocol
import TextEmbedding

/// Cuts extracted text into chunks of at most `maxTokens` model tokens, preferring paragraph
/// and then sentence boundaries, with about `overlapTokens` of the previous chunk repeated.
struct DocumentChunker: Sendable {
    struct Chunk: Equatable, Sendable {
        var text: String
        /// Source offsets (Unicode scalars), end exclusive.
        var start: Int
        var end: Int
        var heading: String?
    }

    let tokenizer: WordPieceTokenizer
    /// Default 200: room for [CLS]/[SEP] within the model's 256.
    var maxTokens = 200
    var overlapTokens = 32

    /// A sentence or paragraph piece: extracted range and its token count.
    private struct Span {
        var start: Int
        var end: Int
        var tokens: Int
        var startsParagraph: Bool
    }

    func chunk(_ text: ExtractedText) -> [Chunk] {
        let spans = split(text)
        var chunks: [Chunk] = []
        var current: [Span] = []
        var tokens = 0
        func emit() {
            guard let first = current.first, let last = current.last else { return }
            let chunk = makeChunk(text, from: first.start, to: last.end)
            if !chunk.text.isEmpty { chunks.append(chunk) }
        }
        for span in spans {
            let halfFull = tokens >= maxTokens / 2
            if !current.isEmpty, tokens + span.tokens > maxTokens || (span.startsParagraph && halfFull) {
                emit()
                // Carry the tail sentences that fit in the overlap into the next chunk.
                var carried: [Span] = []
                var carriedTokens = 0
                for previous in current.reversed() {
                    if carriedTokens + previous.tokens > overlapTokens { break }
                    carried.insert(previous, at: 0)
                    carriedTokens += previous.tokens
                }
                current = carried
                tokens = carriedTokens
            }
            current.append(span)
            tokens += span.tokens
        }
        emit()
        return chunks
    }

    private func makeChunk(_ text: ExtractedText, from start: Int, to end: Int) -> Chunk {
        var first = start
        var last = end
        while first < last, text.scalars[first].properties.isWhitespace { first += 1 }
        while last > first, text.scalars[last - 1].properties.isWhitespace { last -= 1 }
        guard first < last else { return Chunk(text: "", start: 0, end: 0, heading: nil) }
        return Chunk(
            text: String(String.UnicodeScalarView(text.scalars[first..<last])),
            start: text.origin[first],
            end: text.origin[last - 1] + 1,
            heading: text.heading(at: first)
        )
    }

    /// Sentences (ending in . ! ? followed by white space, or a line break), long ones cut at
    /// word boundaries so no span exceeds `maxTokens`.
    private func split(_ text: ExtractedText) -> [Span] {
        var spans: [Span] = []
        let scalars = text.scalars
        var start = 0
        var paragraph = true
        var index = 0
        func close(at end: Int, nextIsParagraph: Bool) {
            if end > start {
                let piece = String(String.UnicodeScalarView(scalars[start..<end]))
                if !piece.allSatisfy(\.isWhitespace) {
                    spans += fit(Span(start: start, end: end, tokens: tokenizer.wordPieces(piece).count, startsParagraph: paragraph), scalars)
                    paragraph = false
                }
            }
            start = end
            if nextIsParagraph { paragraph = true }
        }
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "\n" {
                let blank = index + 1 < scalars.count && scalars[index + 1] == "\n"
                close(at: index + 1, nextIsParagraph: blank || !text.headings.filter { $0.start == index + 1 }.isEmpty)
            } else if [".", "!", "?", "。", "！", "？"].contains(scalar),
                      index + 1 >= scalars.count || scalars[index + 1].properties.isWhitespace {
                close(at: index + 1, nextIsParagraph: false)
            }
            index += 1
        }
        close(at: scalars.count, nextIsParagraph: false)
        return spans
    }

    /// Cuts a span over the limit at word boundaries (or anywhere, for one enormous word).
    private func fit(_ span: Span, _ scalars: [Unicode.Scalar]) -> [Span] {
        if span.tokens <= maxTokens { return [span] }
        var pieces: [Span] = []
        var start = span.start
        var end = span.start
        var paragraph = span.startsParagraph
        while end < span.end {
            // Grow word by word while the piece fits.
            var next = end
            while next < span.end, scalars[next].properties.isWhitespace { next += 1 }
            while next < span.end, !scalars[next].properties.isWhitespace { next += 1 }
            let candidate = String(String.UnicodeScalarView(scalars[start..<next]))
            let count = tokenizer.wordPieces(candidate).count
            if count > maxTokens, end > start {
                let piece = String(String.UnicodeScalarView(scalars[start..<end]))
                pieces.append(Span(start: start, end: end, tokens: tokenizer.wordPieces(piece).count, startsParagraph: paragraph))
                paragraph = false
                start = end
            } else if count > maxTokens {
                // A single word longer than a chunk: it becomes [UNK]-like pieces; keep it whole.
                pieces.append(Span(start: start, end: next, tokens: maxTokens, startsParagraph: paragraph))
                paragraph = false
                start = next
                end = next
            } else {
                end = next
            }
        }
        if end > start {
            let piece = String(String.UnicodeScalarView(scalars[start..<end]))
            pieces.append(Span(start: start, end: end, tokens: tokenizer.wordPieces(piece).count, startsParagraph: paragraph))
        }
        return pieces
    }
}

/// FNV-1a 64 of the UTF-8 bytes, as 16 hex digits: a content fingerprint for idempotent
/// upserts and versions (not a security hash).
func contentHash(_ text: String) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x100_0000_01b3
    }
    let digits = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}
