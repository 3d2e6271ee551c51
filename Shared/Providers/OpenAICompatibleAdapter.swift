import ConduitProtocol
import Foundation
import HTTP

/// OpenAI's chat completions API, as OpenAI serves it and as Ollama, vLLM and llama.cpp's server
/// copy it: the request goes out nearly as it came in, with the deployment's model name.
public struct OpenAICompatibleAdapter: ProviderAdapter {
    public init() {}

    public func makeRequest(_ request: ChatCompletionRequest, for deployment: Deployment, apiKey: String?, stream: Bool) throws -> HTTPRequest {
        guard let (url, headers) = ProviderEndpoint.address(.chatCompletions, of: deployment, apiKey: apiKey) else {
            throw ProviderError(.badRequest, message: "not an OpenAI-family deployment", deployment: deployment.id)
        }
        return try Self.request(request, url: url, headers: headers, deployment: deployment, stream: stream)
    }

    static func request(_ request: ChatCompletionRequest, url: String, headers: [(name: String, value: String)], deployment: Deployment, stream: Bool) throws -> HTTPRequest {
        var upstream = request
        upstream.model = deployment.upstreamModel
        upstream.stream = stream ? true : nil
        // Usage is always asked for: the usage event needs it whether or not the caller does.
        upstream.streamOptions = stream ? StreamOptions(includeUsage: true) : nil
        let body = try WireCoding.encode(upstream)
        return HTTPRequest(
            method: "POST", url: url,
            headers: headers + [("Content-Type", "application/json"), ("Accept", stream ? "text/event-stream" : "application/json")],
            body: body, timeout: deployment.timeouts.total)
    }

    public func completion(from body: [UInt8], stamp: ResponseStamp) throws -> ChatCompletion {
        let completion: ChatCompletion
        do {
            completion = try JSONDecoder().decode(ChatCompletion.self, from: Data(body))
        } catch {
            throw ProviderError(.malformedResponse, message: "the OpenAI-compatible server sent a completion that does not decode: \(error)")
        }
        var stamped = ChatCompletion(id: stamp.id, created: stamp.created, model: stamp.model, choices: completion.choices, usage: completion.usage)
        stamped.systemFingerprint = completion.systemFingerprint
        return stamped
    }

    public func streamTranslator(stamp: ResponseStamp) -> any StreamTranslator {
        Translator(stamp: stamp)
    }

    struct Translator: StreamTranslator {
        let stamp: ResponseStamp
        var isFinished = false
        var usage: ProviderUsage?

        mutating func translate(_ event: SSEEvent) throws -> [ChatCompletionChunk] {
            if event.data == "[DONE]" {
                isFinished = true
                return []
            }
            if event.data.contains("\"error\""), let value = JSONValue.parse(Array(event.data.utf8)), let error = value["error"] {
                throw ProviderError(.serverError, message: error["message"]?.stringValue ?? "the provider reported an error mid-stream")
            }
            let chunk: ChatCompletionChunk
            do {
                chunk = try JSONDecoder().decode(ChatCompletionChunk.self, from: Data(event.data.utf8))
            } catch {
                throw ProviderError(.malformedResponse, message: "the OpenAI-compatible server sent a chunk that does not decode")
            }
            if let reported = chunk.usage { usage = ProviderUsage(reported) }
            guard !chunk.choices.isEmpty else { return [] }
            return [stamp.chunk(chunk.choices)]
        }
    }
}

/// Azure OpenAI: OpenAI's body, addressed to a deployment with an `api-version`, keyed by `api-key`.
public struct AzureOpenAIAdapter: ProviderAdapter {
    public init() {}

    public func makeRequest(_ request: ChatCompletionRequest, for deployment: Deployment, apiKey: String?, stream: Bool) throws -> HTTPRequest {
        guard let (url, headers) = ProviderEndpoint.address(.chatCompletions, of: deployment, apiKey: apiKey) else {
            throw ProviderError(.badRequest, message: "not an OpenAI-family deployment", deployment: deployment.id)
        }
        return try OpenAICompatibleAdapter.request(request, url: url, headers: headers, deployment: deployment, stream: stream)
    }

    public func completion(from body: [UInt8], stamp: ResponseStamp) throws -> ChatCompletion {
        let completion = try OpenAICompatibleAdapter().completion(from: body, stamp: stamp)
        // Azure answers a filtered prompt with an empty choices list and the verdict beside it.
        guard !completion.choices.isEmpty else {
            throw ProviderError(.contentFiltered, message: "Azure's content filter blocked the prompt")
        }
        return completion
    }

    public func streamTranslator(stamp: ResponseStamp) -> any StreamTranslator {
        OpenAICompatibleAdapter.Translator(stamp: stamp)
    }
}
