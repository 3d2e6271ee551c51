import ConduitKit
import ConduitProtocol
import HTTPTypes
import Providers

/// A conservative token count for providers that report none: about four characters per token.
enum TokenEstimate {
    static func tokens(characters: Int) -> Int { (characters + 3) / 4 }

    static func usage(request: ChatCompletionRequest, characters: Int) -> ProviderUsage {
        let prompt = request.messages.reduce(0) { $0 + ($1.content?.plainText.count ?? 0) + 4 }
        return ProviderUsage(promptTokens: tokens(characters: prompt), completionTokens: tokens(characters: characters), estimated: true)
    }

    static func usage(request: ChatCompletionRequest, completionText: String) -> ProviderUsage {
        usage(request: request, characters: completionText.count)
    }
}
