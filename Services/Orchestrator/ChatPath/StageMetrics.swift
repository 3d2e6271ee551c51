import Prometheus

/// `conduit_chat_stage_duration_seconds{stage, phase}`: how long each stage's `prepare` and
/// `finish` (or `abandon`) took — where the chat path's own time goes, beside the model call.
struct StageMetrics: Sendable {
    let registry: PrometheusCollectorRegistry

    static let buckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
    ]

    func record(_ stage: any ChatStage, phase: String, since start: ContinuousClock.Instant) {
        registry.makeDurationHistogram(
            descriptor: .init(namespace: "conduit", subsystem: "chat", metricName: "stage_duration", unitName: "seconds",
                              helpText: "Time of one chat-path stage's prepare or finish, by stage."),
            labels: [("stage", stage.name), ("phase", phase)], buckets: Self.buckets
        ).record(ContinuousClock.now - start)
    }
}
