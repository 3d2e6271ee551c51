import ConduitProtocol

/// A request's token counts as the provider reported them (or as estimated when it did not).
public struct ProviderUsage: Sendable, Hashable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var cachedTokens: Int
    /// Of the completion tokens, those spent reasoning (they are counted in `completionTokens`
    /// too, as every provider family reports or is translated to).
    public var reasoningTokens: Int
    /// The provider reported no usage, so these are our estimate.
    public var estimated: Bool

    public init(promptTokens: Int, completionTokens: Int, cachedTokens: Int = 0, reasoningTokens: Int = 0, estimated: Bool = false) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
        self.reasoningTokens = reasoningTokens
        self.estimated = estimated
    }
}
