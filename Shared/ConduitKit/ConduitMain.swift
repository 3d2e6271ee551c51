import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

/// What `@main` of every service does: read the configuration, set up JSON logging, build the
/// application and run it until SIGTERM or SIGINT. A configuration error stops the process with
/// a log line naming the variable and exit code 1.
public enum ConduitMain {
    public static func run<App: ApplicationProtocol>(
        _ service: ServiceName,
        build: @Sendable (ServiceConfiguration, Logger) async throws -> App
    ) async {
        let configuration: ServiceConfiguration
        do {
            configuration = try ServiceConfiguration(service: service)
        } catch {
            bootstrapLogging(level: .info)
            Logger(label: service.rawValue).critical("invalid configuration", metadata: [LogKey.error: "\(error)"])
            exit(1)
        }
        bootstrapLogging(level: configuration.logLevel)
        var logger = Logger(label: service.rawValue)
        logger[metadataKey: LogKey.service] = .string(service.rawValue)
        do {
            // The exporter starts first and stops last, so the spans of draining requests still leave.
            let tracing = try ConduitTracing.bootstrap(service: service, settings: configuration.tracing, logger: logger)
            let app = try await build(configuration, logger)
            logger.info("starting", metadata: ["address": "\(configuration.host):\(configuration.port)"])
            var group = ServiceGroupConfiguration(services: (tracing.map { [$0] } ?? []) + [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            group.maximumGracefulShutdownDuration = configuration.shutdownTimeout
            group.maximumCancellationDuration = .seconds(5)
            try await ServiceGroup(configuration: group).run()
            logger.info("stopped")
        } catch {
            logger.critical("service failed", metadata: [LogKey.error: "\(error)"])
            exit(1)
        }
    }

    private static func bootstrapLogging(level: Logger.Level) {
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
    }
}
