import ConduitKit

@main
struct GatewayApp {
    static func main() async {
        await ConduitMain.run(.gateway) { configuration, logger in
            try await buildApplication(configuration: configuration, logger: logger)
        }
    }
}
