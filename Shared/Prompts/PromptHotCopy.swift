/// The registry's hot copy of prompts in Redis, which the orchestrator reads without a
/// Postgres query. One hash per prompt, `tpl:{tenant}:{name}` (tenant ids and prompt names
/// never hold `:`), with the fields:
///
/// | field | value |
/// |---|---|
/// | `v:{n}` | version n, as `PromptVersion` JSON (immutable, never removed) |
/// | `l:{label}` | the version the label points at, the same JSON |
/// | `x` | the prompt's running experiment (`HotExperiment` JSON), when it has one |
/// | `deleted` | `1` when the prompt was deleted |
/// | `r` | the prompt's revision: the labels, `x` and `deleted` are those of the newest write |
/// | `complete` | `1` once every version and label was written (a missing field is then a miss, not a gap) |
///
/// Every write also increments `tpl:rev` and records `{tenant}:{name}` in the sorted set
/// `tpl:changes` at that number (the newest 10,000 kept), so each orchestrator can poll one key
/// and drop exactly the prompts that changed.
public enum PromptHotCopy {
    public static let revisionKey = "tpl:rev"
    public static let changesKey = "tpl:changes"
    /// Changes kept in `tpl:changes`; a reader further behind drops everything it holds.
    public static let changesKept = 10_000

    public static func key(tenant: String, name: String) -> String { "tpl:\(tenant):\(name)" }
    public static func member(tenant: String, name: String) -> String { "\(tenant):\(name)" }
    public static func field(_ selector: PromptSelector) -> String {
        switch selector {
        case .label(let label): "l:\(label)"
        case .version(let version): "v:\(version)"
        }
    }
}

/// A running experiment as the chat path needs it: which label it runs on and its variants.
public struct HotExperiment: Sendable, Hashable, Codable {
    public var id: String
    /// Requests for this label (or naming none, when it is `production`) take part.
    public var label: String
    /// `user` or `session`: whose id keeps the variant sticky.
    public var subject: String
    public var variants: [ExperimentAssignment.Variant]

    public init(id: String, label: String, subject: String, variants: [ExperimentAssignment.Variant]) {
        self.id = id
        self.label = label
        self.subject = subject
        self.variants = variants
    }

    public var assignment: ExperimentAssignment { ExperimentAssignment(experiment: id, variants: variants) }
}
