import ConduitKit

@main
struct MetricsExporterApp {
    static func main() async {
        await ConduitMain.run(.metricsExporter) { configuration, logger in
            try await buildApplication(configuration: configuration, logger: logger)
        }
    }
}
