import Budgets
import ConduitHTTP
import ConduitKafka
import ConduitKit
import ConduitPostgres
import ConduitProtocol
import ConduitRedis
import Flows
import Foundation
import Postgres
import HTTP
import Hummingbird
import Kafka
import Logging
import MCPTools
import Prometheus
import Prompts
import Providers
import Redis
import SemanticCache

/// The chat pipeline: the model catalog, provider calls over libcurl with retries, fallback and
/// circuit breaking, streaming, a usage event per request; conversation memory, the semantic
/// cache and retrieval with citations around the provider call.
///
/// | variable | default |
/// |---|---|
/// | `CONDUIT_MODEL_CATALOG` | `deploy/models.yaml` |
/// | `CONDUIT_PROVIDER_MAX_RETRIES` | 2 (per deployment, after the first attempt) |
/// | `CONDUIT_PROVIDER_BACKOFF_MS` | 250 (first backoff; doubles, full jitter, at most 8 s) |
/// | `CONDUIT_CIRCUIT_FAILURES` | 3 (consecutive failures that open a deployment's breaker) |
/// | `CONDUIT_CIRCUIT_COOLDOWN_S` | 30 |
/// | `CONDUIT_ORCHESTRATOR_USAGE_TOPIC` | `conduit.usage` |
/// | `CONDUIT_SESSION_TTL_S` | 86400 (conversation memory lifetime, renewed by every turn) |
/// | `CONDUIT_SESSION_HISTORY_SHARE` | 0.5 (share of the context window, after the completion's reserve, history may fill) |
/// | `CONDUIT_SESSION_MAX_MESSAGES` | 200 (stored per session at most, summary included; the oldest go first) |
/// | `CONDUIT_SESSION_KEEP_MESSAGES` | 4 (latest messages never summarised) |
/// | `CONDUIT_SESSION_SUMMARY_MODEL` | the request's model |
/// | `CONDUIT_RAG_REWRITE_MODEL` | the request's model (rewrites follow-up questions for retrieval) |
/// | `CONDUIT_CACHE_ENABLED` | true |
/// | `CONDUIT_CACHE_THRESHOLD` | 0.95 (cosine similarity; a model's `cache_threshold` overrides it) |
/// | `CONDUIT_CACHE_TENANT_THRESHOLDS` | none (`tenant=0.97,other=0.9`; overrides both) |
/// | `CONDUIT_CACHE_MAX_TEMPERATURE` | 1.0 (hotter requests are not cached; no temperature counts as 1.0) |
/// | `CONDUIT_CACHE_TTL_S` | 86400 |
/// | `CONDUIT_CACHE_MAX_ENTRIES` / `CONDUIT_CACHE_MAX_BYTES` | 200000 / 536870912 (in memory; least recently used contexts go first; expired entries swept every 30 s) |
/// | `CONDUIT_EMBEDDING_MODEL` | `all-MiniLM-L6-v2` (the cache's question embeddings) |
/// | `CONDUIT_BUDGET_REFRESH_MS` | 1000 (a tenant's budgets are fetched from the cost-service at most this often) |
/// | `CONDUIT_BUDGET_STALE_S` | 300 (how long a copy serves while the cost-service is unreachable) |
/// | `CONDUIT_BUDGET_CACHE_TENANTS` | 10000 (tenants whose budgets are kept) |
/// | `CONDUIT_BUDGET_UNAVAILABLE` | `refuse` (503 when budgets cannot be known); `allow` lets requests through |
/// | `CONDUIT_BUDGET_HOLD_TTL_S` | 900 (a request's hold on its budgets, if never settled, expires after this) |
/// | `CONDUIT_BUDGET_SETTLE_BACKLOG` | 1000 (holds settled after their response, at most this many at once; past it, before) |
/// | `CONDUIT_ORCHESTRATOR_PROMPT_POLL_MS` | 200 (how often the prompts' change counter in Redis is read) |
/// | `CONDUIT_ORCHESTRATOR_PROMPT_STALE_MS` | 1000 (with no successful poll for this long, no prompt is served from memory) |
/// | `CONDUIT_ORCHESTRATOR_PROMPT_CACHE_ENTRIES` | 10000 (compiled prompts kept in memory; least recently used go first) |
/// | `CONDUIT_FLOWS_DIR` | `deploy/flows` (the shipped flows, every tenant's) |
/// | `CONDUIT_FLOW_MAX_RUNNING` | 100 (runs in progress per replica; past it, 429) |
/// | `CONDUIT_FLOW_MAX_CONCURRENT_STEPS` | 8 (steps of one run at once) |
/// | `CONDUIT_FLOW_MAX_DEPTH` | 4 (flows nested in flows) |
/// | `CONDUIT_FLOW_HTTP_HOSTS` | none (`host:port` list the `http` executor may call) |
func buildApplication(configuration: ServiceConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    let environment = configuration.environment
    let catalogPath = environment.string("CONDUIT_MODEL_CATALOG", default: "deploy/models.yaml")
    let catalog = try ModelCatalog(yamlFile: catalogPath, environment: environment.values)
    let registry = PrometheusCollectorRegistry()
    let redis = RedisClient(configuration: try configuration.redis, registry: registry, logger: logger)
    let producer = KafkaProducer(configuration: .init(kafka: try configuration.kafka), logger: logger)
    let http = HTTPClient(configuration: configuration.http, logger: logger)
    let providers = ProviderRouter(
        catalog: catalog, client: ProviderClient(http: http, keys: APIKeys(environment: environment.values)),
        policy: RetryPolicy(
            maxRetries: try environment.int("CONDUIT_PROVIDER_MAX_RETRIES", default: 2),
            baseDelay: .milliseconds(try environment.int("CONDUIT_PROVIDER_BACKOFF_MS", default: 250))),
        breakerThreshold: try environment.int("CONDUIT_CIRCUIT_FAILURES", default: 3),
        breakerCooldown: .seconds(try environment.int("CONDUIT_CIRCUIT_COOLDOWN_S", default: 30)),
        registry: registry, logger: logger)
    logger.info("model catalog loaded", metadata: [
        "path": "\(catalogPath)", "models": "\(catalog.models.count)",
        "available": "\(providers.availableModels.map(\.name).joined(separator: ","))",
    ])
    let usage = UsageOutbox(
        producer: producer,
        configuration: try .init(topic: environment.string("CONDUIT_ORCHESTRATOR_USAGE_TOPIC", default: KafkaTopic.usage), environment: environment),
        registry: registry, logger: logger)
    let engine = EngineExecutor(threads: try environment.int("CONDUIT_ENGINE_THREADS", default: 2))
    let semanticCache = SemanticCache(
        redis: redis,
        configuration: .init(
            ttl: .seconds(try environment.int("CONDUIT_CACHE_TTL_S", default: 86_400)),
            maxEntries: try environment.int("CONDUIT_CACHE_MAX_ENTRIES", default: 200_000),
            maxBytes: try environment.int("CONDUIT_CACHE_MAX_BYTES", default: 512 << 20)),
        engine: engine, registry: registry, logger: logger)
    let prompts = HotPromptDirectory(
        redis: redis, registry: ServiceClient(http: http, baseURLs: configuration.serviceURLs),
        configuration: .init(
            pollInterval: .milliseconds(try environment.int("CONDUIT_ORCHESTRATOR_PROMPT_POLL_MS", default: 200)),
            staleAfter: .milliseconds(try environment.int("CONDUIT_ORCHESTRATOR_PROMPT_STALE_MS", default: 1000)),
            maxEntries: try environment.int("CONDUIT_ORCHESTRATOR_PROMPT_CACHE_ENTRIES", default: 10_000)),
        metricsRegistry: registry, logger: logger)
    let postgres = PostgresClient(configuration: try configuration.postgres, logger: logger)
    let flowsMigrated = StartGate()
    let mcpServers: [MCPServerSpec]
    do {
        mcpServers = try MCPToolbox.servers(fromFileAt: environment.optionalString("CONDUIT_MCP_SERVERS"), environment: environment.values)
    } catch let error as MCPConfigurationError {
        throw ConfigurationError(key: "CONDUIT_MCP_SERVERS", expected: "a valid MCP servers file (\(error))")
    }
    let toolbox = MCPToolbox(servers: mcpServers, http: http, maxConcurrentCalls: try environment.int("CONDUIT_MCP_MAX_CONCURRENT_CALLS", default: 16),
                             registry: registry, logger: logger)
    if !mcpServers.isEmpty { logger.info("mcp servers configured", metadata: ["servers": "\(mcpServers.map(\.name).joined(separator: ","))"]) }
    let dependencies = OrchestratorDependencies(
        models: providers,
        usage: usage,
        sessions: RedisSessionStore(
            redis: redis, ttl: .seconds(try environment.int("CONDUIT_SESSION_TTL_S", default: 86_400)),
            maxMessages: try environment.int("CONDUIT_SESSION_MAX_MESSAGES", default: 200)),
        answers: semanticCache,
        services: InternalServiceClient(
            client: ServiceClient(http: http, baseURLs: configuration.serviceURLs),
            embeddingModel: environment.string("CONDUIT_EMBEDDING_MODEL", default: "all-MiniLM-L6-v2")),
        tokenizer: LlamaCppTokenizer(http: http),
        budgets: CostServiceBudgets(
            client: ServiceClient(http: http, baseURLs: configuration.serviceURLs),
            configuration: try budgetDirectoryConfiguration(environment), logger: logger),
        spend: BudgetCounters(redis: redis),
        prompts: prompts,
        flows: GatedFlowStore(inner: PostgresFlowStore(postgres: postgres), migrated: flowsMigrated),
        http: http,
        toolbox: toolbox,
        engine: engine,
        readiness: [.redis(redis), .kafka(producer)])
    let router = try buildRouter(configuration: configuration, dependencies: dependencies, registry: registry, logger: logger)
    return makeConduitApplication(router: router, configuration: configuration, services: [
        redis, engine, producer, usage, http, semanticCache, prompts, postgres, FlowMigrationService(postgres: postgres, migrated: flowsMigrated, logger: logger),
    ], logger: logger)
}

/// What the orchestrator's routes stand on, as protocols: `buildApplication` gives the real
/// ones (providers over HTTP, Kafka, Redis, the embedder and retriever); the application tests
/// give in-process fakes.
struct OrchestratorDependencies: Sendable {
    var models: any ChatModels
    var usage: any UsageRecorder
    var sessions: any SessionStore
    var answers: any AnswerIndex
    var services: any InternalServices
    var tokenizer: any Tokenizer
    var budgets: any BudgetDirectory
    var spend: any SpendReservations
    var prompts: any PromptDirectory = NoPromptDirectory()
    /// Where flows and runs are kept; nil: no flow routes.
    var flows: (any FlowStore)?
    /// For the flows' `http` executor.
    var http: HTTPClient?
    /// The operator's MCP servers, for agents and the `tool` executor.
    var toolbox: MCPToolbox?
    /// Threads for CPU-bound work of the flows (PDF extraction).
    var engine: EngineExecutor?
    var readiness: [ReadinessCheck] = []
}

/// A directory with no prompts (every `conduit.prompt` is a 404), for dependencies that
/// name no registry.
struct NoPromptDirectory: PromptDirectory {
    func prompt(tenant: String, name: String, _ selector: PromptSelector, context: ConduitRequestContext) async throws -> ResolvedPrompt? { nil }
}

func budgetDirectoryConfiguration(_ environment: ConduitEnvironment) throws -> CostServiceBudgets.Configuration {
    let unavailable = environment.string("CONDUIT_BUDGET_UNAVAILABLE", default: "refuse")
    guard ["refuse", "allow"].contains(unavailable) else {
        throw ConfigurationError(key: "CONDUIT_BUDGET_UNAVAILABLE", expected: "refuse or allow")
    }
    return .init(
        refresh: .milliseconds(try environment.int("CONDUIT_BUDGET_REFRESH_MS", default: 1000)),
        staleness: .seconds(try environment.int("CONDUIT_BUDGET_STALE_S", default: 300)),
        maxTenants: try environment.int("CONDUIT_BUDGET_CACHE_TENANTS", default: 10_000),
        allowWhenUnavailable: unavailable == "allow")
}

/// The routes, with the chat path's stages in their order: the prompt template, a router's choice of model, the
/// session's history, the semantic cache, retrieval, budgets, then the model call (`ChatPipeline`).
func buildRouter(
    configuration: ServiceConfiguration, dependencies: OrchestratorDependencies,
    registry: PrometheusCollectorRegistry, logger: Logger
) throws -> Router<ConduitRequestContext> {
    let environment = configuration.environment
    let memory = ConversationMemory(
        store: dependencies.sessions, router: dependencies.models,
        configuration: .init(
            historyShare: try environment.double("CONDUIT_SESSION_HISTORY_SHARE", default: 0.5, in: 0.05...0.95),
            keepMessages: try environment.int("CONDUIT_SESSION_KEEP_MESSAGES", default: 4),
            summaryModel: environment.optionalString("CONDUIT_SESSION_SUMMARY_MODEL")),
        usage: dependencies.usage, logger: logger)
    let cache = AnswerCache(
        cache: dependencies.answers, services: dependencies.services,
        configuration: .init(
            enabled: try environment.bool("CONDUIT_CACHE_ENABLED", default: true),
            threshold: try environment.double("CONDUIT_CACHE_THRESHOLD", default: 0.95, in: 0...1),
            tenantThresholds: try environment.numbers("CONDUIT_CACHE_TENANT_THRESHOLDS", in: 0...1),
            maxTemperature: try environment.double("CONDUIT_CACHE_MAX_TEMPERATURE", default: 1.0, in: 0...2)),
        metrics: .init(registry: registry), logger: logger)
    let rewriter = QueryRewriter(router: dependencies.models, model: environment.optionalString("CONDUIT_RAG_REWRITE_MODEL"), usage: dependencies.usage)
    let pipeline = ChatPipeline(
        stages: [
            PromptStage(directory: dependencies.prompts),
            RoutingStage(
                models: dependencies.models, tokenizer: dependencies.tokenizer, directory: dependencies.budgets, counters: dependencies.spend,
                registry: registry, logger: logger),
            SessionStage(memory: memory),
            CacheStage(cache: cache, models: dependencies.models),
            RetrievalStage(augmenter: RetrievalAugmenter(services: dependencies.services, rewriter: rewriter)),
            BudgetStage(
                directory: dependencies.budgets, counters: dependencies.spend,
                holdTTL: .seconds(try environment.int("CONDUIT_BUDGET_HOLD_TTL_S", default: 900)),
                backlog: SettleBacklog(limit: try environment.int("CONDUIT_BUDGET_SETTLE_BACKLOG", default: 1000), registry: registry), logger: logger),
        ],
        models: dependencies.models, usage: dependencies.usage, metrics: StageMetrics(registry: registry),
        traceContent: configuration.tracing.recordContent)
    let router = makeConduitRouter(configuration: configuration, registry: registry, readiness: dependencies.readiness)
    let routes = try router.internalRoutes(configuration)
    let chat = ChatController(pipeline: pipeline, tokenizer: dependencies.tokenizer)
    chat.addRoutes(to: routes)
    SessionController(store: dependencies.sessions, cache: dependencies.answers).addRoutes(to: routes)
    if let store = dependencies.flows {
        try flowController(configuration: configuration, store: store, chat: chat, dependencies: dependencies, logger: logger).addRoutes(to: routes)
    }
    return router
}

/// The flows' engine over the orchestrator's executors, the shipped flows, and their routes.
func flowController(configuration: ServiceConfiguration, store: any FlowStore, chat: ChatController, dependencies: OrchestratorDependencies,
                    logger: Logger) throws -> FlowController {
    let environment = configuration.environment
    var limits = FlowEngine<FlowCaller>.Limits()
    limits.maxConcurrentSteps = try environment.int("CONDUIT_FLOW_MAX_CONCURRENT_STEPS", default: 8)
    limits.maxDepth = try environment.int("CONDUIT_FLOW_MAX_DEPTH", default: 4)
    let hosts = Set(environment.string("CONDUIT_FLOW_HTTP_HOSTS", default: "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    let library = FlowLibrary(store: store)
    let retrieve = RetrieveStepExecutor(services: dependencies.services)
    let nested = NestedFlowExecutor(library: library)
    let http = dependencies.http.map { HTTPStepExecutor(http: $0, allowedHosts: hosts) }
    var executors: [any FlowExecutor<FlowCaller>] = [
        ChatStepExecutor(chat: chat), retrieve, EmbedStepExecutor(services: dependencies.services),
        nested, ExtractStepExecutor(engine: dependencies.engine), TransformExecutor<FlowCaller>(), CombineExecutor<FlowCaller>(),
    ]
    if let http { executors.append(http) }
    var agentLimits = AgentLimits()
    agentLimits.maxSteps = max(1, try environment.int("CONDUIT_AGENT_MAX_STEPS", default: 8))
    agentLimits.maxSeconds = Double(max(1, try environment.int("CONDUIT_AGENT_MAX_SECONDS", default: 120)))
    agentLimits.maxParallelTools = max(1, try environment.int("CONDUIT_AGENT_MAX_PARALLEL_TOOLS", default: 8))
    agentLimits.maxResultCharacters = max(100, try environment.int("CONDUIT_AGENT_MAX_RESULT_CHARS", default: 16_000))
    let agent = AgentStepExecutor(
        chat: chat, builtIns: BuiltInTool.standard(retrieve: retrieve, flow: nested, http: hosts.isEmpty ? nil : http),
        toolbox: dependencies.toolbox, limits: agentLimits)
    executors.append(agent)
    if let toolbox = dependencies.toolbox { executors.append(ToolStepExecutor(toolbox: toolbox)) }
    let engine = FlowEngine(executors: executors, limits: limits)
    library.attach(engine)
    library.shipped = try FlowLibrary.loadShipped(from: environment.string("CONDUIT_FLOWS_DIR", default: "deploy/flows"), engine: engine, logger: logger)
    return FlowController(library: library, maxRunning: try environment.int("CONDUIT_FLOW_MAX_RUNNING", default: 100), logger: logger,
                          agentTools: { await agent.catalog() })
}
