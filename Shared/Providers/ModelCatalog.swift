import ConduitProtocol

/// The public model names a caller may ask for, each served by one or more deployments, with
/// the models to fall back to when all of them fail.
public struct ModelCatalog: Sendable {
    public private(set) var models: [CatalogModel]
    /// Names that choose one of the models per request (`auto`).
    public private(set) var routers: [RouterModel]
    private var index: [String: Int]

    /// Fails when two models share a name, two deployments share an id, a fallback names a
    /// model the catalog does not have, or a router's name is taken or its candidates unknown.
    public init(models: [CatalogModel], routers: [RouterModel] = []) throws {
        self.models = models
        self.routers = routers
        index = [:]
        var deploymentIDs = Set<String>()
        for (position, model) in models.enumerated() {
            guard index.updateValue(position, forKey: model.name) == nil else {
                throw CatalogError("model '\(model.name)' is defined twice")
            }
            guard !model.deployments.isEmpty else { throw CatalogError("model '\(model.name)' has no deployments") }
            for deployment in model.deployments {
                guard deploymentIDs.insert(deployment.id).inserted else {
                    throw CatalogError("deployment id '\(deployment.id)' is used twice")
                }
            }
        }
        for model in models {
            for fallback in model.fallbacks where index[fallback] == nil {
                throw CatalogError("model '\(model.name)' falls back to '\(fallback)', which the catalog does not define")
            }
        }
        var routerNames = Set<String>()
        for router in routers {
            guard index[router.name] == nil, routerNames.insert(router.name).inserted else {
                throw CatalogError("router '\(router.name)': the name is already taken")
            }
            guard !router.candidates.isEmpty else { throw CatalogError("router '\(router.name)' has no models") }
            for candidate in router.candidates where index[candidate] == nil {
                throw CatalogError("router '\(router.name)' chooses '\(candidate)', which the catalog does not define")
            }
            guard router.minQuality.values.allSatisfy({ (0...1).contains($0) }) else {
                throw CatalogError("router '\(router.name)': min_quality must be between 0 and 1")
            }
            guard (0...1).contains(router.stepDownAt) else { throw CatalogError("router '\(router.name)': step_down_at must be between 0 and 1") }
        }
    }

    public func router(named name: String) -> RouterModel? {
        routers.first { $0.name == name }
    }

    public func model(named name: String) -> CatalogModel? {
        index[name].map { models[$0] }
    }

    /// Where a request for `name` may go, in order: the model's own deployments, then those of
    /// each fallback model (and their fallbacks), each deployment once. Deployments whose API
    /// key is not configured are left out.
    public func route(for name: String, keys: APIKeys) -> [Route] {
        var routes: [Route] = []
        var seenModels = Set<String>()
        var pending = [name]
        while !pending.isEmpty {
            let next = pending.removeFirst()
            guard seenModels.insert(next).inserted, let model = model(named: next) else { continue }
            for deployment in model.deployments where keys.isConfigured(deployment) {
                routes.append(Route(model: model.name, deployment: deployment))
            }
            pending += model.fallbacks
        }
        return routes
    }

    /// The models a caller can use now: those with at least one configured deployment.
    public func availableModels(keys: APIKeys) -> [CatalogModel] {
        models.filter { model in model.deployments.contains { keys.isConfigured($0) } }
    }

    /// The routers a caller can use now: those with at least one usable candidate.
    public func availableRouters(keys: APIKeys) -> [RouterModel] {
        routers.filter { router in
            router.candidates.contains { name in model(named: name)?.deployments.contains { keys.isConfigured($0) } ?? false }
        }
    }
}

/// One step of a request's route: a public model and one of its deployments.
public struct Route: Sendable, Hashable {
    public var model: String
    public var deployment: Deployment
}

public struct CatalogModel: Sendable, Hashable {
    public var name: String
    public var ownedBy: String
    /// Unix time reported by `/v1/models`.
    public var created: Int
    public var deployments: [Deployment]
    /// Other public models to try, in order, when every deployment of this one failed.
    public var fallbacks: [String]
    /// Retrieval applied when a request names this model and asks for none itself.
    public var defaultRAG: RAGOptions?
    /// The semantic cache's similarity threshold for this model (else the service default).
    public var cacheThreshold: Double?

    public init(name: String, ownedBy: String = "conduit", created: Int = 0, deployments: [Deployment], fallbacks: [String] = [],
                defaultRAG: RAGOptions? = nil, cacheThreshold: Double? = nil) {
        self.name = name
        self.ownedBy = ownedBy
        self.created = created
        self.deployments = deployments
        self.fallbacks = fallbacks
        self.defaultRAG = defaultRAG
        self.cacheThreshold = cacheThreshold
    }
}

/// The provider families an adapter exists for.
public enum ProviderKind: String, Sendable, Hashable, CaseIterable {
    /// OpenAI itself and every server speaking its `/v1` API: Ollama, vLLM, llama.cpp's server.
    case openAI = "openai"
    case azureOpenAI = "azure"
    case anthropic
    case gemini
}

/// One place a model is served: a provider, its model name there, and what it costs.
public struct Deployment: Sendable, Hashable {
    /// Unique in the catalog; names the deployment in metrics, logs and usage events.
    public var id: String
    public var provider: ProviderKind
    /// The provider's name for the model (for Azure, the deployment name).
    public var upstreamModel: String
    /// For OpenAI-compatible servers the `/v1` base (`https://api.openai.com/v1`); for Azure the
    /// resource endpoint; for Anthropic and Gemini the API host.
    public var baseURL: String
    /// The environment variable holding the API key; nil for servers that need none.
    public var apiKeyVariable: String?
    /// Azure only.
    public var apiVersion: String?
    public var prices: Prices
    public var contextWindow: Int?
    /// The completion limit sent when the caller sets none (Anthropic requires one).
    public var defaultMaxTokens: Int
    public var tier: String?
    /// Relative answer quality, 0…1, for model selection.
    public var quality: Double?
    /// Typical latency to the first token, for model selection.
    public var latencyMilliseconds: Int?
    public var timeouts: Timeouts
    /// Where exact token counts come from; nil means a conservative estimate.
    public var tokenizer: Tokenizer?
    /// Whether the model reads image parts. A request with images is never sent to a deployment
    /// that does not (llama.cpp answers such a request with a 500, which would look like the
    /// deployment failing and open its circuit for every tenant). Default true.
    public var acceptsImages: Bool

    public enum Tokenizer: String, Sendable, Hashable {
        /// llama.cpp's server: `POST /tokenize` beside the `/v1` base.
        case llamaCpp = "llama.cpp"
    }

    public init(
        id: String, provider: ProviderKind, upstreamModel: String, baseURL: String, apiKeyVariable: String? = nil,
        apiVersion: String? = nil, prices: Prices = .init(), contextWindow: Int? = nil, defaultMaxTokens: Int = 4096,
        tier: String? = nil, quality: Double? = nil, latencyMilliseconds: Int? = nil, timeouts: Timeouts = .init(),
        tokenizer: Tokenizer? = nil, acceptsImages: Bool = true
    ) {
        self.id = id
        self.provider = provider
        self.upstreamModel = upstreamModel
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKeyVariable = apiKeyVariable
        self.apiVersion = apiVersion
        self.prices = prices
        self.contextWindow = contextWindow
        self.defaultMaxTokens = defaultMaxTokens
        self.tier = tier
        self.quality = quality
        self.latencyMilliseconds = latencyMilliseconds
        self.timeouts = timeouts
        self.tokenizer = tokenizer
        self.acceptsImages = acceptsImages
    }

    /// US dollars per million tokens.
    public struct Prices: Sendable, Hashable {
        public var input: Double
        public var output: Double
        /// Prompt tokens served from the provider's prompt cache; defaults to the input price.
        public var cachedInput: Double?
        /// Completion tokens spent reasoning; defaults to the output price.
        public var reasoning: Double?

        public init(input: Double = 0, output: Double = 0, cachedInput: Double? = nil, reasoning: Double? = nil) {
            self.input = input
            self.output = output
            self.cachedInput = cachedInput
            self.reasoning = reasoning
        }

        /// What `usage` costs at these prices, in USD: the only place a cost is computed.
        /// Streamed or not, the same usage costs the same.
        public func cost(of usage: ProviderUsage) -> Double {
            let cached = Double(min(usage.cachedTokens, usage.promptTokens))
            let uncached = Double(max(0, usage.promptTokens - usage.cachedTokens))
            let reasoned = Double(min(usage.reasoningTokens, usage.completionTokens))
            let answered = Double(max(0, usage.completionTokens - usage.reasoningTokens))
            return (uncached * input + cached * (cachedInput ?? input) + answered * output + reasoned * (reasoning ?? output)) / 1_000_000
        }
    }

    public struct Timeouts: Sendable, Hashable {
        /// Streaming: from sending the request to the first event. Default 30 s.
        public var firstByte: Duration
        /// The whole request, body included. Default 300 s.
        public var total: Duration

        public init(firstByte: Duration = .seconds(30), total: Duration = .seconds(300)) {
            self.firstByte = firstByte
            self.total = total
        }
    }
}

public struct CatalogError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = "model catalog: " + description }
}
