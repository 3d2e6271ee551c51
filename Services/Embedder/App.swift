import ConduitKit

@main
struct EmbedderApp {
    static func main() async {
        await ConduitMain.run(.embedder) { configuration, logger in
            try await buildApplication(configuration: configuration, logger: logger)
        }
    }
}
