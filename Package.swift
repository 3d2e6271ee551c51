// swift-tools-version:6.1
import PackageDescription

// Every service gets the same base: the protocol types, the bootstrap kit and Hummingbird.
let serviceBase: [Target.Dependency] = [
    "ConduitProtocol",
    "ConduitKit",
    .product(name: "Hummingbird", package: "hummingbird"),
    .product(name: "Logging", package: "swift-log"),
    .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
    .product(name: "Prometheus", package: "swift-prometheus"),
    .product(name: "HTTPTypes", package: "swift-http-types"),
]

/// An executable product named `product` built from `Services/<name>`.
func service(_ name: String, product: String, dependencies: [Target.Dependency] = []) -> (Product, Target) {
    (
        .executable(name: product, targets: [name]),
        .executableTarget(name: name, dependencies: serviceBase + dependencies, path: "Services/\(name)")
    )
}

/// A system library target wrapping one C library through pkg-config and its Debian package.
func cLibrary(_ name: String, pkgConfig: String, apt: String) -> Target {
    .systemLibrary(name: name, path: "Shared/\(name)", pkgConfig: pkgConfig, providers: [.apt([apt])])
}

let postgres: [Target.Dependency] = ["Postgres", "ConduitPostgres"]
let redis: [Target.Dependency] = ["Redis", "ConduitRedis"]
let kafka: [Target.Dependency] = ["Kafka", "ConduitKafka"]
let http: [Target.Dependency] = ["HTTP", "ConduitHTTP"]

let services = [
    service("Gateway", product: "gateway", dependencies: postgres + redis + kafka + http + [
        .product(name: "Crypto", package: "swift-crypto"), .product(name: "JWTKit", package: "jwt-kit"),
    ]),
    service("Orchestrator", product: "orchestrator", dependencies: postgres + redis + kafka + http + [
        "Providers", "SemanticCache", "Budgets", "Routing", "Prompts", "Flows", "PDF", "MCPTools", .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Tracing", package: "swift-distributed-tracing"),
    ]),
    service("Embedder", product: "embedder", dependencies: kafka + http + ["TextEmbedding", "Providers"]),
    service("Retriever", product: "retriever", dependencies: postgres + kafka + http + ["SearchEngine"]),
    service("CostService", product: "cost-service", dependencies: postgres + redis + kafka + http + ["Budgets", .product(name: "Crypto", package: "swift-crypto")]),
    service("PromptRegistry", product: "prompt-registry", dependencies: postgres + redis + kafka + ["Prompts"]),
    service("MetricsExporter", product: "metrics-exporter", dependencies: kafka),
]

let package = Package(
    name: "Conduit",
    platforms: [.macOS(.v15)],
    products: services.map(\.0) + [
        .executable(name: "bench-clients", targets: ["ClientsBenchmark"]),
        .executable(name: "bench-embedder", targets: ["EmbedderBenchmark"]),
        .executable(name: "bench-retriever", targets: ["RetrieverBenchmark"]),
        .executable(name: "bench-gateway-upstream", targets: ["GatewayBenchmark"]),
        .executable(name: "bench-cache", targets: ["CacheBenchmark"]),
        .executable(name: "bench-routing", targets: ["RoutingBenchmark"]),
        .executable(name: "bench-prompts-stats", targets: ["PromptsBenchmark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        // Traces over OTLP/HTTP only: the gRPC exporter would add grpc-swift to every build.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
    ],
    targets: services.map(\.1) + [
        // Wire types: Foundation only, no I/O.
        .target(name: "ConduitProtocol", path: "Shared/ConduitProtocol"),

        // Service bootstrap shared by every executable: configuration, the router and its
        // middleware, health, identity, the engine threads. No C library.
        .target(
            name: "ConduitKit",
            dependencies: [
                "ConduitProtocol",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            path: "Shared/ConduitKit"
        ),
        // What a service using one piece of infrastructure adds to the kit: its settings, its
        // readiness check and what the services share over it. A service links only these it uses.
        kit("ConduitPostgres", over: "Postgres"),
        kit("ConduitRedis", over: "Redis"),
        kit("ConduitKafka", over: "Kafka", extra: [.product(name: "Prometheus", package: "swift-prometheus")]),
        kit("ConduitHTTP", over: "HTTP", extra: [.product(name: "HTTPTypes", package: "swift-http-types")]),

        // C libraries: module maps only, each imported by exactly one Swift wrapper.
        cLibrary("CLibPQ", pkgConfig: "libpq", apt: "libpq-dev"),
        cLibrary("CHiredis", pkgConfig: "hiredis", apt: "libhiredis-dev"),
        cLibrary("CRdKafka", pkgConfig: "rdkafka", apt: "librdkafka-dev"),
        cLibrary("CCurl", pkgConfig: "libcurl", apt: "libcurl4-openssl-dev"),
        cLibrary("COpenBLAS", pkgConfig: "openblas", apt: "libopenblas-dev"),
        cLibrary("CPoppler", pkgConfig: "poppler-glib", apt: "libpoppler-glib-dev"),

        // Engines: pure Swift over BLAS, no I/O beyond reading their model files.
        .target(name: "TextEmbedding", dependencies: ["COpenBLAS"], path: "Shared/TextEmbedding"),
        .target(name: "SearchEngine", dependencies: ["ConduitProtocol", "CSearchKernels"], path: "Shared/SearchEngine"),
        // LLM provider adapters, the model catalog, retries, fallback and circuit breaking.
        .target(name: "Providers", dependencies: [
            "ConduitProtocol", "HTTP",
            .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ], path: "Shared/Providers"),
        // Budgets' live spend counters in Redis, shared by the orchestrator (reserve, settle) and
        // the cost-service (build from the ledger, report).
        .target(name: "Budgets", dependencies: ["ConduitProtocol", "Redis"], path: "Shared/Budgets"),
        .target(name: "Routing", dependencies: ["ConduitProtocol", "Providers"], path: "Shared/Routing"),
        // Prompt templates: Mustache compiling and rendering, experiment assignment and
        // statistics. Pure; shared by the prompt-registry and the orchestrator.
        .target(name: "Prompts", dependencies: [
            "ConduitProtocol", .product(name: "Mustache", package: "swift-mustache"), .product(name: "Crypto", package: "swift-crypto"),
        ], path: "Shared/Prompts"),
        // Flows: YAML workflows (steps, dependencies, parallel groups, conditions, retries,
        // fallbacks, nesting) and the engine that runs them over executors. Pure; the
        // orchestrator supplies the executors that call models and services.
        .target(name: "Flows", dependencies: ["ConduitProtocol", .product(name: "Yams", package: "Yams")], path: "Shared/Flows"),
        // Tools of MCP servers an operator configures (stdio and streamable HTTP), through the
        // official SDK's client; agents and the `tool` step call them.
        .target(name: "MCPTools", dependencies: [
            "HTTP", "ConduitProtocol", .product(name: "MCP", package: "swift-sdk"), .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"), .product(name: "Prometheus", package: "swift-prometheus"),
        ], path: "Shared/MCPTools"),
        // PDF text, page by page, over poppler's GLib library.
        .target(name: "PDF", dependencies: ["CPoppler"], path: "Shared/PDF"),
        // A prefetch hint for the vector index's walk (Swift has no prefetch intrinsic).
        .target(name: "CSearchKernels", path: "Shared/CSearchKernels"),

        // Thin async wrappers; no C type leaks past them.
        wrapper("Postgres", c: "CLibPQ"),
        wrapper("Redis", c: "CHiredis", extra: [.product(name: "Prometheus", package: "swift-prometheus")]),
        wrapper("Kafka", c: "CRdKafka", extra: ["ConduitProtocol"]),
        wrapper("HTTP", c: "CCurl"),

        .executableTarget(
            name: "ClientsBenchmark",
            dependencies: ["Redis", "Kafka", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/ClientsBenchmark"
        ),

        .executableTarget(name: "EmbedderBenchmark", dependencies: [
            "TextEmbedding", "HTTP", .product(name: "Logging", package: "swift-log"),
        ], path: "Benchmarks/EmbedderBenchmark"),

        // The semantic cache: per-context vector indexes over Redis-stored entries, and its guard.
        .target(name: "SemanticCache", dependencies: [
            "Redis", "SearchEngine", "ConduitKit", "ConduitProtocol",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], path: "Shared/SemanticCache"),

        .executableTarget(name: "CacheBenchmark", dependencies: [
            "SemanticCache", "Redis", "ConduitKit", .product(name: "Logging", package: "swift-log"),
        ], path: "Benchmarks/CacheBenchmark"),

        .executableTarget(name: "PromptsBenchmark", dependencies: ["Prompts", "ConduitProtocol"], path: "Benchmarks/PromptsBenchmark"),

        .executableTarget(name: "RoutingBenchmark", dependencies: ["Routing", "Providers"], path: "Benchmarks/RoutingBenchmark"),

        .executableTarget(name: "RetrieverBenchmark", dependencies: ["SearchEngine", "ConduitProtocol"], path: "Benchmarks/RetrieverBenchmark"),

        .executableTarget(name: "GatewayBenchmark", dependencies: [
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
        ], path: "Benchmarks/GatewayBenchmark"),

        .testTarget(name: "ConduitProtocolTests", dependencies: ["ConduitProtocol"], path: "Tests/ConduitProtocolTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ConduitKitTests", dependencies: [
            "ConduitKit", "ConduitProtocol", "Postgres", "Redis", "Kafka", "HTTP", "TestSupport",
            "ConduitPostgres", "ConduitRedis", "ConduitKafka", "ConduitHTTP",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOCore", package: "swift-nio"),
        ], path: "Tests/ConduitKitTests"),
        .testTarget(name: "BudgetsTests", dependencies: [
            "Budgets", "ConduitProtocol", "Redis", "TestSupport", .product(name: "Logging", package: "swift-log"),
        ], path: "Tests/BudgetsTests"),
        .testTarget(name: "PromptsTests", dependencies: ["Prompts", "ConduitProtocol"], path: "Tests/PromptsTests"),
        .testTarget(name: "FlowsTests", dependencies: ["Flows", "ConduitProtocol"], path: "Tests/FlowsTests"),
        .testTarget(name: "MCPToolsTests", dependencies: [
            "MCPTools", "ConduitProtocol", "TestSupport", .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], path: "Tests/MCPToolsTests"),
        .testTarget(name: "PDFTests", dependencies: ["PDF", "TestSupport"], path: "Tests/PDFTests"),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport"], path: "Tests/PostgresTests"),
        .testTarget(name: "RedisTests", dependencies: ["Redis", "TestSupport", .product(name: "Prometheus", package: "swift-prometheus")], path: "Tests/RedisTests"),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka", "TestSupport"], path: "Tests/KafkaTests"),
        .testTarget(name: "HTTPTests", dependencies: [
            "HTTP", "TestSupport", .product(name: "NIOPosix", package: "swift-nio"),
        ], path: "Tests/HTTPTests"),
        .testTarget(name: "EmbedderTests", dependencies: [
            "Embedder", "ConduitKit", "ConduitProtocol", "TestSupport", "Kafka", "TextEmbedding",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
        ], path: "Tests/EmbedderTests"),
        .testTarget(name: "SearchEngineTests", dependencies: ["SearchEngine", "CSearchKernels", "ConduitProtocol", "TestSupport"], path: "Tests/SearchEngineTests"),
        .testTarget(name: "SemanticCacheTests", dependencies: [
            "SemanticCache", "Redis", "ConduitKit", "TestSupport", .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], path: "Tests/SemanticCacheTests"),
        .testTarget(name: "TextEmbeddingTests", dependencies: ["TextEmbedding", "TestSupport"], path: "Tests/TextEmbeddingTests",
                    resources: [.copy("Fixtures")]),
        // The application tier: the gateway's routes over in-process fakes; no server.
        serviceTests("GatewayTests", of: "Gateway", [
            .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "JWTKit", package: "jwt-kit"),
        ]),
        // The gateway's real stores and clients against the test stack's servers.
        serviceTests("GatewayStoreTests", of: "Gateway", [
            "Kafka", "Redis", "ConduitRedis", .product(name: "Logging", package: "swift-log"), .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "JWTKit", package: "jwt-kit"),
        ]),
        .testTarget(name: "RetrieverTests", dependencies: [
            "Retriever", "ConduitKit", "ConduitProtocol", "TestSupport", "Kafka", "Postgres", "SearchEngine", "ConduitPostgres",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOCore", package: "swift-nio"),
        ], path: "Tests/RetrieverTests"),
        .testTarget(name: "MetricsExporterTests", dependencies: [
            "MetricsExporter", "ConduitProtocol", "TestSupport", .product(name: "Prometheus", package: "swift-prometheus"),
        ], path: "Tests/MetricsExporterTests"),
        .testTarget(name: "CostServiceTests", dependencies: [
            "CostService", "ConduitKit", "ConduitProtocol", "ConduitPostgres", "ConduitKafka", "TestSupport", "Kafka", "Postgres", "Budgets", "Redis",
            .product(name: "Logging", package: "swift-log"), .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "HummingbirdTesting", package: "hummingbird"), .product(name: "HTTPTypes", package: "swift-http-types"),
        ], path: "Tests/CostServiceTests"),
        // The application tier: the orchestrator's routes and stages over in-process fakes; no server.
        serviceTests("OrchestratorTests", of: "Orchestrator", ["Flows",
            "Providers", "SemanticCache", "Budgets", "Routing",
            .product(name: "Logging", package: "swift-log"), .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // The orchestrator's real stores and clients against the test stack's servers.
        serviceTests("OrchestratorStoreTests", of: "Orchestrator", ["Kafka", "HTTP", "Redis", "Providers", "Budgets", "Prompts", "ConduitHTTP", "Postgres", "ConduitPostgres", "Flows"]),
        serviceTests("PromptRegistryTests", of: "PromptRegistry", ["Postgres", "Redis", "Prompts"]),
        .testTarget(name: "RoutingTests", dependencies: ["Routing", "Providers", "ConduitProtocol"], path: "Tests/RoutingTests"),
        .testTarget(name: "ProvidersTests", dependencies: [
            "Providers", "ConduitProtocol", "HTTP", "TestSupport",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], path: "Tests/ProvidersTests"),
        .testTarget(name: "IntegrationTests", dependencies: [
            "TestSupport", "HTTP", "Postgres", "Kafka", "Redis", "ConduitProtocol", "ConduitKit",
            .product(name: "Logging", package: "swift-log"),
        ], path: "Tests/IntegrationTests"),
        .target(name: "TestSupport", dependencies: [
            "Kafka", "ConduitKit",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ], path: "Tests/TestSupport"),
    ]
)

/// Tests of the service `service` driven through its router (`Tests/<name>`).
func serviceTests(_ name: String, of service: String, _ extra: [Target.Dependency]) -> Target {
    .testTarget(name: name, dependencies: [
        .byName(name: service), "ConduitKit", "ConduitProtocol", "TestSupport",
        .product(name: "HummingbirdTesting", package: "hummingbird"),
        .product(name: "HTTPTypes", package: "swift-http-types"),
        .product(name: "NIOCore", package: "swift-nio"),
    ] + extra, path: "Tests/\(name)")
}

/// `name`, the kit over the wrapper `wrapper`: `Shared/<name>`.
func kit(_ name: String, over wrapper: String, extra: [Target.Dependency] = []) -> Target {
    .target(
        name: name,
        dependencies: extra + [
            "ConduitKit", "ConduitProtocol", .byName(name: wrapper),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ],
        path: "Shared/\(name)"
    )
}

/// The one Swift target allowed to import C library `c`.
func wrapper(_ name: String, c: String, extra: [Target.Dependency] = []) -> Target {
    .target(
        name: name,
        dependencies: extra + [
            .byName(name: c),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ],
        path: "Shared/\(name)"
    )
}

// The engines run optimised in debug builds too: their debug code is many times slower (every
// array access checked, nothing inlined), which made tests that index or embed real volumes slow.
for target in package.targets where ["TextEmbedding", "SearchEngine"].contains(target.name) {
    target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-O"], .when(configuration: .debug))]
}

for target in package.targets where target.type != .system && target.name != "CSearchKernels" {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .swiftLanguageMode(.v6),
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
    ]
}
