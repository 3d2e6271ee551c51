import ConduitProtocol
import Foundation
import Yams

extension ModelCatalog {
    /// Reads a catalog file (see `deploy/models.yaml` for the format). Errors name the model or
    /// deployment and the field at fault.
    public init(yamlFile path: String, environment: [String: String] = [:]) throws {
        guard let text = FileManager.default.contents(atPath: path) else { throw CatalogError("cannot read \(path)") }
        try self.init(yaml: String(decoding: text, as: UTF8.self), environment: environment)
    }

    /// `${NAME}` and `${NAME:-default}` in the text are replaced from `environment` first, so one
    /// file serves every stack (e.g. the local model's port). Keys are never written into the
    /// file this way: deployments name their key's variable in `api_key_env`.
    public init(yaml: String, environment: [String: String] = [:]) throws {
        let file: CatalogFile
        do {
            file = try YAMLDecoder().decode(CatalogFile.self, from: Self.interpolate(yaml, environment))
        } catch let error as DecodingError {
            throw CatalogError(Self.describe(error))
        } catch {
            throw CatalogError("not valid YAML: \(error)")
        }
        try self.init(models: file.models.map { try $0.model() }, routers: (file.routers ?? []).map { try $0.router() })
    }

    static func interpolate(_ text: String, _ environment: [String: String]) -> String {
        var output = ""
        var rest = text[...]
        while let start = rest.range(of: "${") {
            output += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                rest = rest[start.lowerBound...]
                break
            }
            let expression = rest[start.upperBound..<end]
            let parts = expression.split(separator: ":-", maxSplits: 1, omittingEmptySubsequences: false)
            let value = environment[String(parts[0])].flatMap { $0.isEmpty ? nil : $0 }
            output += value ?? (parts.count > 1 ? String(parts[1]) : "")
            rest = rest[rest.index(after: end)...]
        }
        return output + rest
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing '\(key.stringValue)' at \(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(context.debugDescription) at \(path(context))"
        @unknown default: return "\(error)"
        }
    }
}

private struct CatalogFile: Decodable {
    var models: [ModelEntry]
    var routers: [RouterEntry]?
}

private struct RouterEntry: Decodable {
    var name: String
    var models: [String]
    var minQuality: [String: Double]?
    var stepDownAt: Double?

    enum CodingKeys: String, CodingKey {
        case name, models
        case minQuality = "min_quality"
        case stepDownAt = "step_down_at"
    }

    func router() throws -> RouterModel {
        var qualities = RouterModel.defaultMinQuality
        for (key, value) in minQuality ?? [:] {
            guard let complexity = Complexity(rawValue: key) else {
                throw CatalogError("router '\(name)': unknown complexity '\(key)' in min_quality (known: simple, medium, complex)")
            }
            qualities[complexity] = value
        }
        return RouterModel(name: name, candidates: models, minQuality: qualities, stepDownAt: stepDownAt ?? 0.8)
    }
}

private struct ModelEntry: Decodable {
    var name: String
    var ownedBy: String?
    var created: Int?
    var fallbacks: [String]?
    var deployments: [DeploymentEntry]
    var rag: RAGOptions?
    var cacheThreshold: Double?

    enum CodingKeys: String, CodingKey {
        case name, created, fallbacks, deployments, rag
        case ownedBy = "owned_by"
        case cacheThreshold = "cache_threshold"
    }

    func model() throws -> CatalogModel {
        if let cacheThreshold, !(0...1).contains(cacheThreshold) {
            throw CatalogError("model '\(name)': cache_threshold must be between 0 and 1")
        }
        return CatalogModel(
            name: name, ownedBy: ownedBy ?? "conduit", created: created ?? 0,
            deployments: try deployments.map { try $0.deployment(model: name) }, fallbacks: fallbacks ?? [],
            defaultRAG: rag, cacheThreshold: cacheThreshold)
    }
}

private struct DeploymentEntry: Decodable {
    struct PriceEntry: Decodable {
        var input: Double?
        var output: Double?
        var cachedInput: Double?
        var reasoning: Double?
        enum CodingKeys: String, CodingKey {
            case input, output
            case cachedInput = "cached_input"
            case reasoning
        }
    }

    struct TimeoutEntry: Decodable {
        var firstByte: Double?
        var total: Double?
        enum CodingKeys: String, CodingKey {
            case firstByte = "first_byte_s"
            case total = "total_s"
        }
    }

    var id: String
    var provider: String
    var model: String
    var baseURL: String?
    var apiKeyEnv: String?
    var apiVersion: String?
    var pricePerMillion: PriceEntry?
    var contextWindow: Int?
    var maxTokens: Int?
    var tier: String?
    var quality: Double?
    var latencyMs: Int?
    var timeouts: TimeoutEntry?
    var tokenizer: String?
    /// `[text]` or `[text, image]` (the default).
    var input: [String]?

    enum CodingKeys: String, CodingKey {
        case id, provider, model, tier, quality, timeouts, tokenizer, input
        case baseURL = "base_url"
        case apiKeyEnv = "api_key_env"
        case apiVersion = "api_version"
        case pricePerMillion = "price_per_million"
        case contextWindow = "context_window"
        case maxTokens = "max_tokens"
        case latencyMs = "latency_ms"
    }

    func deployment(model name: String) throws -> Deployment {
        guard let kind = ProviderKind(rawValue: provider) else {
            let known = ProviderKind.allCases.map(\.rawValue).joined(separator: ", ")
            throw CatalogError("deployment '\(id)' of '\(name)': unknown provider '\(provider)' (known: \(known))")
        }
        let base = baseURL ?? kind.defaultBaseURL
        guard let base, base.hasPrefix("http://") || base.hasPrefix("https://") else {
            throw CatalogError("deployment '\(id)' of '\(name)': base_url must be an http(s) URL")
        }
        if kind == .azureOpenAI, apiVersion == nil {
            throw CatalogError("deployment '\(id)' of '\(name)': Azure needs api_version")
        }
        var countsTokens: Deployment.Tokenizer?
        if let tokenizer {
            guard let known = Deployment.Tokenizer(rawValue: tokenizer) else {
                throw CatalogError("deployment '\(id)' of '\(name)': unknown tokenizer '\(tokenizer)' (known: llama.cpp)")
            }
            countsTokens = known
        }
        if let input, let unknown = input.first(where: { $0 != "text" && $0 != "image" }) {
            throw CatalogError("deployment '\(id)' of '\(name)': unknown input '\(unknown)' (known: text, image)")
        }
        func seconds(_ value: Double?, default fallback: Duration) -> Duration {
            value.map { .milliseconds(Int($0 * 1000)) } ?? fallback
        }
        let defaults = Deployment.Timeouts()
        return Deployment(
            id: id, provider: kind, upstreamModel: model, baseURL: base,
            apiKeyVariable: apiKeyEnv.flatMap { $0.isEmpty ? nil : $0 }, apiVersion: apiVersion,
            prices: .init(input: pricePerMillion?.input ?? 0, output: pricePerMillion?.output ?? 0, cachedInput: pricePerMillion?.cachedInput,
                          reasoning: pricePerMillion?.reasoning),
            contextWindow: contextWindow, defaultMaxTokens: maxTokens ?? 4096, tier: tier, quality: quality,
            latencyMilliseconds: latencyMs,
            timeouts: .init(
                firstByte: seconds(timeouts?.firstByte, default: defaults.firstByte),
                total: seconds(timeouts?.total, default: defaults.total)),
            tokenizer: countsTokens, acceptsImages: input?.contains("image") ?? true)
    }
}

extension ProviderKind {
    /// The public endpoint, when the provider has one.
    var defaultBaseURL: String? {
        switch self {
        case .openAI: "https://api.openai.com/v1"
        case .anthropic: "https://api.anthropic.com"
        case .gemini: "https://generativelanguage.googleapis.com"
        case .azureOpenAI: nil
        }
    }
}
