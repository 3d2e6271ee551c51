import ConduitKit

@main
struct CostServiceApp {
    static func main() async {
        await ConduitMain.run(.costService) { configuration, logger in
            try await buildApplication(configuration: configuration, logger: logger)
        }
    }
}
