import ConduitKit

@main
struct OrchestratorApp {
    static func main() async {
        await ConduitMain.run(.orchestrator) { configuration, logger in
            try await buildApplication(configuration: configuration, logger: logger)
        }
    }
}
