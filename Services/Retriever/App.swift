import ConduitKit

@main
struct RetrieverApp {
    static func main() async {
        await ConduitMain.run(.retriever) { configuration, logger in
            try await buildApplication(configuration: configuration, logger: logger)
        }
    }
}
