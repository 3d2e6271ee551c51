import ConduitKit

@main
struct PromptRegistryApp {
    static func main() async {
        await ConduitMain.run(.promptRegistry) { configuration, logger in
            try await buildApplication(configuration: configuration, logger: logger)
        }
    }
}
