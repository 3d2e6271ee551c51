import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Providers

/// Writes SSE frames, telling a vanished client apart from a failing upstream.
struct SSEOutput {
    struct ClientGone: Error {}

    var writer: any ResponseBodyWriter
    private let encoder = WireCoding.encoder()

    init(writer: any ResponseBodyWriter) { self.writer = writer }

    mutating func send(_ chunk: ChatCompletionChunk) async throws {
        try await write("data: " + String(decoding: try encoder.encode(chunk), as: UTF8.self) + "\n\n")
    }

    /// The gateway's token count for its rate limits (`ConduitHeader.reportUsage`).
    mutating func comment(tokens: Int) async throws {
        try await write(ConduitHeader.usageComment + String(tokens) + "\n\n")
    }

    mutating func done() async throws {
        try await write("data: [DONE]\n\n")
        do { try await writer.finish(nil) } catch { throw ClientGone() }
    }

    /// The error frame the OpenAI SDK raises as `APIError`, then the end of the body.
    mutating func fail(_ envelope: ErrorEnvelope) async throws {
        try await write("data: " + String(decoding: try encoder.encode(envelope), as: UTF8.self) + "\n\n")
        do { try await writer.finish(nil) } catch { throw ClientGone() }
    }

    private mutating func write(_ text: String) async throws {
        do { try await writer.write(ByteBuffer(string: text)) } catch { throw ClientGone() }
    }
}
